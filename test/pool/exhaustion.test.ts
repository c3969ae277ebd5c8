import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { adminToken, call, expectProblem, expectStatus, PASSWORD, PLATFORM } from "../harness";

// This project runs in its own workerd with only wrangler.toml's tenant databases, so draining
// its pool starves no other test.
describe("signup when the database pool runs dry", () => {
  it("answers 503 NO_TENANT_DATABASE and writes nothing", async () => {
    const count = async (table: string) => (await env.CONTROL_DB.prepare(`SELECT count(*) AS n FROM ${table}`).first<{ n: number }>())!.n;
    const signup = (slug: string) => call(`${PLATFORM}/v1/signup`, { body: { tenant: { name: slug, slug }, user: { email: `${slug}@example.test`, password: PASSWORD, name: "X" } } });

    const free = (await call(`${PLATFORM}/v1/platform/databases`, { token: adminToken() })).body.free as number;
    expect(free).toBeGreaterThan(0);
    for (let i = 0; i < free - 1; i++) expectStatus(await signup(`fill-${i}`), 201);
    // Three signups race for the last database: exactly one gets it.
    const racers = await Promise.all(["race-a", "race-b", "race-c"].map((slug) => signup(slug)));
    expect(racers.map((r) => r.status).sort()).toEqual([201, 503, 503]);
    const winners = await env.CONTROL_DB.prepare("SELECT count(DISTINCT db_binding) AS n, count(*) AS t FROM tenants").first<{ n: number; t: number }>();
    expect(winners!.n).toBe(winners!.t);
    const before = { tenants: await count("tenants"), users: await count("users"), memberships: await count("memberships"), families: await count("refresh_token_families") };

    const res = await signup("second");
    expectProblem(res, 503, "NO_TENANT_DATABASE");
    expect(res.headers.get("retry-after")).toBe("300");
    expect({ tenants: await count("tenants"), users: await count("users"), memberships: await count("memberships"), families: await count("refresh_token_families") }).toEqual(before);
    expectProblem(await call("http://second.localhost/v1/projects"), 404, "TENANT_NOT_FOUND");
  });
});
