import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { unstable_getMiniflareWorkerOptions } from "wrangler";

// `npm run db:provision -- --remote` against a stand-in for the Cloudflare API's D1 endpoints (this
// machine reaches no Cloudflare account): the create and list calls as documented, a create that
// takes a while (so concurrency shows), a rate limit once, and a failure that interrupts a run.

const api = {
  databases: new Map<string, { uuid: string; jurisdiction?: string }>(),
  creates: [] as string[],
  inFlight: 0,
  maxInFlight: 0,
  failCreateOf: "" as string,
  rateLimitOnce: true,
  authorizations: new Set<string>(),
};

async function handle(req: IncomingMessage, res: ServerResponse) {
  api.authorizations.add(req.headers.authorization ?? "");
  const url = new URL(req.url!, "http://api");
  const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(body));
  };
  if (url.pathname !== "/client/v4/accounts/acc123/d1/database") return json(404, { success: false, errors: [{ message: "no route" }] });
  if (req.method === "GET") {
    const like = url.searchParams.get("name") ?? "";
    const all = [...api.databases].filter(([name]) => name.includes(like)).map(([name, d]) => ({ uuid: d.uuid, name }));
    const page = Number(url.searchParams.get("page") ?? 1);
    const per = Number(url.searchParams.get("per_page") ?? 20);
    return json(200, { success: true, errors: [], result: all.slice((page - 1) * per, page * per), result_info: { page, per_page: per, total_pages: Math.ceil(all.length / per) } });
  }
  let raw = "";
  for await (const chunk of req) raw += chunk;
  const body = JSON.parse(raw) as { name: string; jurisdiction?: string };
  if (api.rateLimitOnce) {
    api.rateLimitOnce = false;
    return json(429, { success: false, errors: [{ message: "rate limited" }] }, { "retry-after": "0" });
  }
  api.inFlight++;
  api.maxInFlight = Math.max(api.maxInFlight, api.inFlight);
  await new Promise((r) => setTimeout(r, 40));
  api.inFlight--;
  if (body.name === api.failCreateOf) return json(400, { success: false, errors: [{ code: 7500, message: "simulated failure" }] });
  if (api.databases.has(body.name)) return json(400, { success: false, errors: [{ message: "database already exists" }] });
  const uuid = crypto.randomUUID();
  api.databases.set(body.name, { uuid, jurisdiction: body.jurisdiction });
  api.creates.push(body.name);
  return json(200, { success: true, errors: [], result: { uuid, name: body.name, created_at: new Date().toISOString() } });
}

const server = createServer((req, res) => void handle(req, res));
let base = "";
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/client/v4`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function script(file: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [file, ...args], { env: { ...process.env, CLOUDFLARE_API_TOKEN: "tok_test", CLOUDFLARE_ACCOUNT_ID: "acc123", CLOUDFLARE_API_BASE_URL: base } }, (err, stdout, stderr) =>
      resolve({ code: err ? Number(err.code ?? 1) : 0, out: stdout + stderr }),
    );
  });
}
const provision = (config: string, ...args: string[]) => script("scripts/provision.ts", ["--config", config, "--remote", ...args]);
const declared = (config: string) => [...readFileSync(config, "utf8").matchAll(/binding = "(TENANT_DB_[A-Z_]*\d+)"\ndatabase_name = "([^"]+)"\ndatabase_id = "([^"]+)"/g)].map((m) => ({ binding: m[1]!, name: m[2]!, id: m[3]! }));

describe("a new shard's config, and db:provision --remote", () => {
  it("writes shard s2's config, then creates its databases side by side through the API, and a rerun after an interruption makes only what is missing, creating none twice", async () => {
    // Shard s2's config, as the README's deployment steps make it.
    const config = join(mkdtempSync(join(tmpdir(), "provision-")), "wrangler.s2.toml");
    expect((await script("scripts/shard-config.ts", ["--shard", "s2", "--out", config])).code).toBe(0);
    const made = readFileSync(config, "utf8");
    expect(made).toMatch(/^name = "tessera-s2"$/m);
    expect(made).toMatch(/^SHARD = "s2"$/m);
    expect(made).not.toMatch(/^\[assets\]/m);
    // Its own queues, and the router's compliance queue, where a person's erasure runs.
    const queues = [...made.matchAll(/^(?:queue|dead_letter_queue) = "([^"]+)"/gm)].map((m) => m[1]!);
    expect(queues.filter((q) => !q.startsWith("tessera-s2-"))).toEqual(["tessera-compliance"]);
    expect(made).toMatch(/binding = "ROUTER_COMPLIANCE_QUEUE"\nqueue = "tessera-compliance"/);
    expect(declared(config)).toEqual([]);
    // wrangler reads it: the same Worker, shard s2's queues and vars.
    const read = unstable_getMiniflareWorkerOptions(config).workerOptions as { bindings?: Record<string, unknown>; queueConsumers?: Record<string, unknown> };
    expect(read.bindings?.SHARD).toBe("s2");
    expect(Object.keys(read.queueConsumers ?? {})).toContain("tessera-s2-runs");

    // The sixth database's creation fails: the run stops with the error, having declared what it made.
    api.failCreateOf = "tessera-tenant-5006";
    const first = await provision(config, "--total", "12", "--concurrency", "4");
    expect(first.code).not.toBe(0);
    expect(first.out).toContain("simulated failure");
    const partial = declared(config);
    expect(partial.length).toBeGreaterThanOrEqual(1);
    expect(partial.length).toBeLessThan(12);

    // The same command again: the rest, and any made but not declared is found by name, not made again.
    api.failCreateOf = "";
    const second = await provision(config, "--total", "12", "--concurrency", "4");
    expect(second.code, second.out).toBe(0);
    const all = declared(config);
    // Shard s2's databases are numbered from 5001, so binding names never meet shard s1's.
    expect(all.map((d) => d.binding).sort()).toEqual(Array.from({ length: 12 }, (_, i) => `TENANT_DB_${5001 + i}`));
    for (const d of all) expect(d.id).toBe(api.databases.get(d.name)!.uuid);
    expect(new Set(api.creates).size).toBe(api.creates.length);
    expect(api.creates.length).toBe(12);
    // Side by side, never more than asked; the rate limit was waited out; the token was sent.
    expect(api.maxInFlight).toBeGreaterThan(1);
    expect(api.maxInFlight).toBeLessThanOrEqual(4);
    expect(api.rateLimitOnce).toBe(false);
    expect([...api.authorizations]).toEqual(["Bearer tok_test"]);

    // Run once more: nothing is missing, nothing is made.
    const third = await provision(config, "--total", "12");
    expect(third.code, third.out).toBe(0);
    expect(api.creates.length).toBe(12);

    // EU databases: created in the EU jurisdiction, their own numbering.
    const eu = await provision(config, "--count", "2", "--jurisdiction", "eu");
    expect(eu.code, eu.out).toBe(0);
    expect(declared(config).filter((d) => d.binding.startsWith("TENANT_DB_EU_")).map((d) => d.binding)).toEqual(["TENANT_DB_EU_5001", "TENANT_DB_EU_5002"]);
    expect(api.databases.get("tessera-tenant-eu-5001")?.jurisdiction).toBe("eu");
  }, 30_000);
});
