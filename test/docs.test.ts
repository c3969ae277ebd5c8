import { describe, expect, it } from "vitest";
import readme from "../README.md?raw";
import { ERROR_CODES } from "../src/lib/errors";

describe("documentation", () => {
  it("documents exactly the error codes the code has, with their statuses", () => {
    const documented = Object.fromEntries(
      [...readme.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])]),
    );
    const actual = Object.fromEntries(Object.entries(ERROR_CODES).map(([code, { status }]) => [code, status]));
    expect(documented).toEqual(actual);
  });
});
