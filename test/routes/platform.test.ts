import { env } from "cloudflare:test";
import { LATEST_SCHEMA, schemaOf } from "../../src/db/migrations/apply";
import { boundTenantDatabases, tenantBinding } from "../../src/db/router";
import { describe, expect, it, vi } from "vitest";
import { adminToken, call, createKey, createTenant, ensureFreeDatabases, expectProblem, expectStatus, PLATFORM } from "../harness";

const admin = (path: string, opts: { method?: string; body?: unknown } = {}) => call(`${PLATFORM}${path}`, { ...opts, token: adminToken() });

describe("platform operator API", () => {
  it("refuses callers without the admin token, including tenant credentials (401)", async () => {
    const t = await createTenant();
    expectProblem(await call(`${PLATFORM}/v1/platform/tenants`), 401, "UNAUTHENTICATED");
    expectProblem(await call(`${PLATFORM}/v1/platform/tenants`, { token: t.owner.token }), 401, "INVALID_TOKEN");
    const key = await createKey(t, t.owner.token, ["projects:read"]);
    expectProblem(await call(`${PLATFORM}/v1/platform/tenants/${t.id}/suspend`, { method: "POST", token: key.key }), 401, "INVALID_TOKEN");
    // And the admin token means nothing on a tenant host.
    expectProblem(await call(`${t.host}/v1/projects`, { token: adminToken() }), 401, "INVALID_TOKEN");
    expectProblem(await call(`${t.host}/v1/platform/tenants`, { token: adminToken() }), 404, "NOT_FOUND");
  });

  it("lists tenants with their database binding, paged", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const res = await admin("/v1/platform/tenants?limit=100");
    expectStatus(res, 200);
    const byId = new Map(res.body.data.map((t: { id: string }) => [t.id, t]));
    expect(byId.get(a.id)).toMatchObject({ slug: a.slug, status: "active", db_binding: expect.stringMatching(/^TENANT_DB_\d{4}$/) });
    expect((byId.get(a.id) as { db_binding: string }).db_binding).not.toBe((byId.get(b.id) as { db_binding: string }).db_binding);
    const first = await admin("/v1/platform/tenants?limit=1");
    expect(first.body.data).toHaveLength(1);
    expect(first.body.next_cursor).toEqual(expect.any(String));
  });

  it("suspends a tenant (403 TENANT_SUSPENDED on every route) and reactivates it", async () => {
    const t = await createTenant();
    const other = await createTenant();
    expectStatus(await call(`${t.host}/v1/projects`, { token: t.owner.token }), 200);
    const suspended = await admin(`/v1/platform/tenants/${t.id}/suspend`, { method: "POST" });
    expectStatus(suspended, 200);
    expect(suspended.body.status).toBe("suspended");
    expectProblem(await call(`${t.host}/v1/projects`, { token: t.owner.token }), 403, "TENANT_SUSPENDED");
    expectProblem(await call(`${t.host}/v1/auth/login`, { body: { email: t.owner.email, password: "x" } }), 403, "TENANT_SUSPENDED");
    expectStatus(await call(`${other.host}/v1/projects`, { token: other.owner.token }), 200);

    expectStatus(await admin(`/v1/platform/tenants/${t.slug}/reactivate`, { method: "POST" }), 200);
    expectStatus(await call(`${t.host}/v1/projects`, { token: t.owner.token }), 200);
    expectProblem(await admin("/v1/platform/tenants/ten_nope/suspend", { method: "POST" }), 404, "NOT_FOUND");
  });

  it("writes the shared host cache from the change itself, never from a request", async () => {
    const t = await createTenant();
    const cached = async () => JSON.parse((await env.TENANT_CACHE.get(`host:${t.slug}.localhost`))!);
    expect(await cached()).toMatchObject({ id: t.id, status: "active" });
    await admin(`/v1/platform/tenants/${t.id}/suspend`, { method: "POST" });
    expect(await cached()).toMatchObject({ id: t.id, status: "suspended" });
    // A request that read the tenant before the suspension has nothing to write back: requests only read KV.
    await env.TENANT_CACHE.delete(`host:${t.slug}.localhost`);
    expectProblem(await call(`${t.host}/v1/projects`, { token: t.owner.token }), 403, "TENANT_SUSPENDED");
    expect(await env.TENANT_CACHE.get(`host:${t.slug}.localhost`)).toBeNull();
    await admin(`/v1/platform/tenants/${t.id}/reactivate`, { method: "POST" });
    expect(await cached()).toMatchObject({ id: t.id, status: "active" });
  });

  it("lists the plans with their limits and how many tenants are on each", async () => {
    const before = await admin("/v1/platform/plans");
    expectStatus(before, 200);
    // (Other files in this shared pool add plans of their own: the seeded three are checked, and the order for all.)
    const plans = before.body.data as { id: string; monthly_tokens: number }[];
    expect(plans.map((p) => p.id).filter((id) => ["free", "pro", "enterprise"].includes(id))).toEqual(["free", "pro", "enterprise"]);
    expect(plans.map((p) => p.monthly_tokens)).toEqual(plans.map((p) => p.monthly_tokens).sort((a, b) => a - b));
    expect(plans.find((p) => p.id === "pro")).toMatchObject({ name: "Pro", monthly_tokens: 5_000_000, seats: 25, projects: 100, storage_bytes: 53_687_091_200 });
    // A plan of this test's own, so files running beside it cannot move its count.
    const own = `plan-${crypto.randomUUID().slice(0, 8)}`;
    await env.CONTROL_DB.prepare("INSERT INTO plans (id, name, requests_per_minute, monthly_tokens, seats, projects, storage_bytes) VALUES (?, 'Own', 100, 7, 5, 5, 100)").bind(own).run();
    const count = async () => ((await admin("/v1/platform/plans")).body.data as { id: string; tenants: number }[]).find((p) => p.id === own)!.tenants;
    expect(await count()).toBe(0);
    const t = await createTenant();
    expectStatus(await admin(`/v1/platform/tenants/${t.id}/plan`, { body: { plan: own } }), 200);
    expect(await count()).toBe(1);
    // Erased tenants are not counted.
    await admin(`/v1/platform/tenants/${t.id}/suspend`, { method: "POST" });
    await env.CONTROL_DB.prepare("UPDATE tenants SET status = 'erased' WHERE id = ?").bind(t.id).run();
    expect(await count()).toBe(0);
    expectProblem(await call(`${PLATFORM}/v1/platform/plans`, { token: t.owner.token }), 401, "INVALID_TOKEN");
  });

  it("shows a tenant's credit balance and ledger to the operator", async () => {
    const t = await createTenant();
    expect((await admin(`/v1/platform/tenants/${t.id}/credits`)).body).toEqual({ balance_micros: 0, data: [], next_cursor: null });
    await admin(`/v1/platform/tenants/${t.id}/credits`, { body: { amount_micros: 5_000_000, reason: "welcome" } });
    await admin(`/v1/platform/tenants/${t.slug}/credits`, { body: { amount_micros: 250_000, reason: "apology" } });
    const res = await admin(`/v1/platform/tenants/${t.slug}/credits?limit=1`);
    expectStatus(res, 200);
    expect(res.body).toMatchObject({ balance_micros: 5_250_000, data: [{ amount_micros: 250_000, kind: "grant", reason: "apology" }], next_cursor: expect.any(String) });
    // The tenant sees the same ledger; the operator's view of another tenant is its own.
    expect((await call(`${t.host}/v1/credits`, { token: t.owner.token })).body.balance_micros).toBe(5_250_000);
    const other = await createTenant();
    expect((await admin(`/v1/platform/tenants/${other.id}/credits`)).body.balance_micros).toBe(0);
    expectProblem(await admin("/v1/platform/tenants/ten_nope/credits"), 404, "NOT_FOUND");
  });

  it("attaches a verified custom hostname that then reaches the tenant", async () => {
    const t = await createTenant();
    const host = `studio-${t.slug}.example.com`;
    expectProblem(await call(`http://${host}/v1/projects`, { token: t.owner.token }), 404, "TENANT_NOT_FOUND");
    const res = await admin("/v1/platform/domains", { body: { tenant: t.slug, hostname: host.toUpperCase() } });
    expectStatus(res, 201);
    expect(res.body).toMatchObject({ hostname: host, tenant_id: t.id });
    const created = await call(`http://${host}/v1/projects`, { token: t.owner.token, body: { name: "via custom host" } });
    expectStatus(created, 201);
    expectStatus(await call(`${t.host}/v1/projects/${created.body.id}`, { token: t.owner.token }), 200);

    const other = await createTenant();
    expectProblem(await call(`http://${host}/v1/projects`, { token: other.owner.token }), 401, "INVALID_TOKEN");
    expectProblem(await admin("/v1/platform/domains", { body: { tenant: other.id, hostname: host } }), 409, "CONFLICT");

    const listed = await admin(`/v1/platform/domains?tenant=${t.slug}`);
    expect(listed.body.data).toEqual([{ hostname: host, tenant_id: t.id, verified_at: res.body.verified_at }]);
    expectStatus(await admin(`/v1/platform/domains/${host}`, { method: "DELETE" }), 204);
    expectProblem(await call(`http://${host}/v1/projects`, { token: t.owner.token }), 404, "TENANT_NOT_FOUND");
    expectProblem(await admin(`/v1/platform/domains/${host}`, { method: "DELETE" }), 404, "NOT_FOUND");
    expectStatus(await call(`${t.host}/v1/projects`, { token: t.owner.token }), 200);
  });

  it("refuses bad hostnames and unknown tenants, naming the field", async () => {
    const t = await createTenant();
    const under = await admin("/v1/platform/domains", { body: { tenant: t.id, hostname: `x.localhost` } });
    expectProblem(under, 400, "VALIDATION_FAILED");
    expect(under.body.errors[0].field).toBe("hostname");
    const bad = await admin("/v1/platform/domains", { body: { tenant: t.id, hostname: "not a host" } });
    expectProblem(bad, 400, "VALIDATION_FAILED");
    expect(bad.body.errors[0].field).toBe("hostname");
    expectProblem(await admin("/v1/platform/domains", { body: { tenant: "nobody", hostname: "ok.example.org" } }), 404, "NOT_FOUND");
  });

  it("reports and syncs the tenant database pool", async () => {
    await ensureFreeDatabases(2);
    const before = await admin("/v1/platform/databases");
    expectStatus(before, 200);
    expect(before.body.bound).toBe(boundTenantDatabases(env).length);
    expect(before.body.registered).toBe(before.body.free + before.body.assigned);
    // The low-water mark (POOL_LOW_WATER, 10 by default): below it the pool says so.
    expect(before.body.low_water).toBe(10);
    expect(before.body.low).toBe(before.body.free < 10);
    const warned = vi.spyOn(console, "warn");
    await createTenant();
    // Below the mark, each signup says so in the log.
    const lines = warned.mock.calls.map((c) => String(c[0])).filter((l) => l.includes('"pool.low"'));
    warned.mockRestore();
    expect(lines.length).toBe(before.body.jurisdictions.default.free - 1 < 10 ? 1 : 0);
    const after = await admin("/v1/platform/databases");
    expect(after.body.free).toBe(before.body.free - 1);
    // The harness migrates databases as tests need them: the rest are bound but not migrated.
    const known = new Set((await env.CONTROL_DB.prepare("SELECT binding FROM tenant_databases").all<{ binding: string }>()).results.map((r) => r.binding));
    const unmigrated = boundTenantDatabases(env).filter((b) => !known.has(b));
    expect(unmigrated.length).toBeGreaterThan(1);
    // Sync migrates a bound database the pool does not know (through the bundled migrations) and registers it.
    const sync = await admin("/v1/platform/databases/sync?limit=1", { method: "POST" });
    expectStatus(sync, 200);
    expect(sync.body).toMatchObject({ registered: [unmigrated[0]], unmigrated: [], errors: {} });
    // The rest of the bound databases are still to come (a request migrates at most its limit).
    expect(sync.body.remaining).toBeGreaterThan(0);
    expect(sync.body.pool).toMatchObject({ free: after.body.free + 1, behind: 0 });
    expect(await schemaOf(tenantBinding(env, unmigrated[0]!)!)).toBe(LATEST_SCHEMA);
    // One that fails to migrate is named with the error and stays out of the pool.
    await tenantBinding(env, unmigrated[1]!)!.exec("CREATE TABLE projects (id text)");
    const refused = await admin("/v1/platform/databases/sync?limit=1", { method: "POST" });
    expect(refused.body).toMatchObject({ registered: [], unmigrated: [unmigrated[1]] });
    expect(refused.body.errors[unmigrated[1]!]).toMatch(/0000_init\.sql, statement 1: table `projects` already exists/);
    expect(refused.body.pool.free).toBe(after.body.free + 1);
    await tenantBinding(env, unmigrated[1]!)!.exec("DROP TABLE projects");
  });
});
