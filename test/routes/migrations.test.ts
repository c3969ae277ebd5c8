import { applyD1Migrations, env, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { publishTenant } from "../../src/db/directory";
import { BUNDLED_MIGRATIONS } from "../../src/db/migrations/tenant.generated";
import { LATEST_SCHEMA, REQUIRED_SCHEMA, schemaOf } from "../../src/db/migrations/apply";
import { boundTenantDatabases, tenantBinding } from "../../src/db/router";
import { adminToken, call, createTenant, ensureFreeDatabases, expectProblem, expectStatus, PLATFORM } from "../harness";

const admin = (path: string, opts: { method?: string; body?: unknown } = {}) => call(`${PLATFORM}${path}`, { ...opts, token: adminToken() });
const PREVIOUS = BUNDLED_MIGRATIONS.at(-2)!.name;

/**
 * Bound databases the pool does not know yet, brought by hand to the migration before `upTo` (the
 * newest: one migration behind) and registered there.
 */
async function behindDatabases(n: number, drift?: (d1: D1Database, i: number) => Promise<void>, upTo = LATEST_SCHEMA): Promise<string[]> {
  const applied = env.TENANT_MIGRATIONS.filter((m) => m.name < upTo);
  await ensureFreeDatabases(2);
  const known = new Set((await env.CONTROL_DB.prepare("SELECT binding FROM tenant_databases").all<{ binding: string }>()).results.map((r) => r.binding));
  const picked = boundTenantDatabases(env)
    .filter((b) => !known.has(b))
    .slice(0, n);
  for (const [i, binding] of picked.entries()) {
    const d1 = tenantBinding(env, binding)!;
    await applyD1Migrations(d1, applied);
    await drift?.(d1, i);
    // Registered as taken (by no real tenant), so a signup in a file running beside this one never gets a database left behind here.
    await env.CONTROL_DB.prepare("INSERT INTO tenant_databases (binding, migration, tenant_id) VALUES (?, ?, ?)").bind(binding, applied.at(-1)!.name, `ten_held_${binding}`).run();
  }
  return picked;
}

/** Drives the runner until the rollout stops moving (its alarm also fires by itself; either way one step at a time). */
async function settle(id: string) {
  const runner = env.MIGRATION_RUNNER.get(env.MIGRATION_RUNNER.idFromName("platform"));
  for (let i = 0; i < 100; i++) {
    const r = await admin(`/v1/platform/migrations/${id}?databases=true`);
    if (r.body.status !== "running") return r;
    await runDurableObjectAlarm(runner);
  }
  throw new Error("the rollout did not finish");
}

describe("tenant schema migrations inside the platform", () => {
  it("bundles exactly the migrations in migrations/tenant, statement for statement", () => {
    expect(BUNDLED_MIGRATIONS.map((m) => m.name)).toEqual(env.TENANT_MIGRATIONS.map((m) => m.name));
    // (wrangler keeps drizzle-kit's "--> statement-breakpoint" comments in front of statements; the bundle drops them.)
    const bare = (sql: string) => sql.replaceAll("--> statement-breakpoint", "").trim();
    for (const [i, m] of BUNDLED_MIGRATIONS.entries()) expect(m.statements.map(bare)).toEqual(env.TENANT_MIGRATIONS[i]!.queries.map(bare));
  });

  it("rolls a database behind up to the newest schema, leaves one at it alone, and shows where each is", async () => {
    const [behind] = await behindDatabases(1);
    const t = await createTenant();
    const current = (await env.CONTROL_DB.prepare("SELECT db_binding FROM tenants WHERE id = ?").bind(t.id).first<{ db_binding: string }>())!.db_binding;
    const rowsAt = async (b: string) => (await tenantBinding(env, b)!.prepare("SELECT count(*) AS n FROM d1_migrations").first<{ n: number }>())!.n;
    const before = await rowsAt(current);

    const started = await admin("/v1/platform/migrations", { body: {} });
    expectStatus(started, 202);
    expect(started.body).toMatchObject({ target: LATEST_SCHEMA, status: "running", failure: null });
    const done = await settle(started.body.id);
    expect(done.body).toMatchObject({ status: "completed", progress: { failed: 0, pending: 0 } });
    expect(done.body.progress.done).toBe(done.body.total);
    const states = new Map(done.body.databases.map((d: { database: string; state: string; schema: string }) => [d.database, d]));
    expect(states.get(behind!)).toMatchObject({ state: "done", schema: LATEST_SCHEMA });
    expect(await schemaOf(tenantBinding(env, behind!)!)).toBe(LATEST_SCHEMA);
    // The tenant's database was at the target: read once, nothing applied.
    expect(await rowsAt(current)).toBe(before);
    expectStatus(await call(`${t.host}/v1/projects`, { token: t.owner.token }), 200);
  });

  it("stops at a failure, naming the database, the migration and the statement, with that database whole at its previous version; canaries go first", async () => {
    // The canary has drifted (a table the last migration makes is already there); the two after it have not.
    const [drifted, ...rest] = await behindDatabases(3, async (d1, i) => {
      if (i === 0) await d1.exec("CREATE TABLE exports (id text)");
    });
    const d1 = (b: string) => tenantBinding(env, b)!;
    const canary = (await env.CONTROL_DB.prepare("SELECT count(*) AS n FROM tenant_databases WHERE binding <= ?").bind(drifted).first<{ n: number }>())!.n;
    const started = await admin("/v1/platform/migrations", { body: { canary } });
    expectStatus(started, 202);
    const failed = await settle(started.body.id);
    expect(failed.body).toMatchObject({ status: "failed", canary, failure: { database: drifted, migration: LATEST_SCHEMA }, progress: { failed: 1 } });
    expect(failed.body.failure.statement).toMatch(/^CREATE TABLE `exports`/);
    expect(failed.body.failure.error).toMatch(/table `exports` already exists/);
    // The drifted database holds nothing of the failed migration (its first table was made in the same batch).
    expect(await schemaOf(d1(drifted!))).toBe(PREVIOUS);
    expect(await d1(drifted!).prepare("SELECT name FROM sqlite_master WHERE name = 'compliance_settings'").first()).toBeNull();
    // The databases after the canaries were never reached.
    for (const b of rest) expect(await schemaOf(d1(b))).toBe(PREVIOUS);
    const states = new Map(failed.body.databases.map((d: { database: string; state: string }) => [d.database, d.state]));
    expect([states.get(drifted), ...rest.map((b) => states.get(b))]).toEqual(["failed", "pending", "pending"]);
    // A failed rollout is not active: once the drift is repaired, the next one finishes the job.
    await d1(drifted!).exec("DROP TABLE exports");
    const again = await admin("/v1/platform/migrations", { body: {} });
    expectStatus(again, 202);
    expect((await settle(again.body.id)).body.status).toBe("completed");
    for (const b of [drifted!, ...rest]) expect(await schemaOf(d1(b))).toBe(LATEST_SCHEMA);
  });

  it("holds a tenant whose database is behind the schema the code needs with 503 and Retry-After, until its rollout reaches it; a record that only lags is corrected, not refused", async () => {
    const t = await createTenant();
    const own = (await env.CONTROL_DB.prepare("SELECT db_binding FROM tenants WHERE id = ?").bind(t.id).first<{ db_binding: string }>())!.db_binding;
    // A record that lags behind its database: the request checks the database, goes through, and mends the record.
    await env.CONTROL_DB.prepare("UPDATE tenant_databases SET migration = '0010_older.sql' WHERE binding = ?").bind(own).run();
    await publishTenant(env, t.id);
    expectStatus(await call(`${t.host}/v1/projects`, { token: t.owner.token }), 200);
    expect((await env.CONTROL_DB.prepare("SELECT migration FROM tenant_databases WHERE binding = ?").bind(own).first<{ migration: string }>())!.migration).toBe(LATEST_SCHEMA);

    // A database that really is behind: the tenant is moved onto one a migration short of the schema the code requires.
    const [behind] = await behindDatabases(1, undefined, REQUIRED_SCHEMA);
    await env.CONTROL_DB.batch([
      env.CONTROL_DB.prepare("UPDATE tenant_databases SET tenant_id = ? WHERE binding = ?").bind(`ten_held_${own}`, own),
      env.CONTROL_DB.prepare("UPDATE tenant_databases SET tenant_id = ? WHERE binding = ?").bind(t.id, behind),
      env.CONTROL_DB.prepare("UPDATE tenants SET db_binding = ? WHERE id = ?").bind(behind, t.id),
    ]);
    await publishTenant(env, t.id);
    const held = await call(`${t.host}/v1/projects`, { token: t.owner.token });
    expectProblem(held, 503, "SCHEMA_BEHIND");
    expect(held.headers.get("retry-after")).toBe("30");
    expect(held.body.detail).toContain(env.TENANT_MIGRATIONS.filter((m) => m.name < REQUIRED_SCHEMA).at(-1)!.name);
    const started = await admin("/v1/platform/migrations", { body: {} });
    expectStatus(started, 202);
    expect((await settle(started.body.id)).body.status).toBe("completed");
    expectStatus(await call(`${t.host}/v1/projects`, { token: t.owner.token }), 200);
  });

  it("refuses a second rollout while one is paused, an unknown target, and pausing what is not running; a resumed rollout finishes", async () => {
    const [behind] = await behindDatabases(1);
    expectProblem(await admin("/v1/platform/migrations", { body: { target: "9999_nope.sql" } }), 400, "VALIDATION_FAILED");
    expectProblem(await admin("/v1/platform/migrations", { body: { canary: -1 } }), 400, "VALIDATION_FAILED");
    // A paused rollout, as a pause leaves it (written here: a real one's first step may beat the pause).
    await env.CONTROL_DB.prepare("INSERT INTO migration_rollouts (id, target, status, total) VALUES ('mig_paused', ?, 'paused', 1)").bind(LATEST_SCHEMA).run();
    expectProblem(await admin("/v1/platform/migrations", { body: {} }), 409, "ROLLOUT_ACTIVE");
    expectProblem(await admin("/v1/platform/migrations/mig_paused/pause", { method: "POST" }), 409, "ROLLOUT_STATE");
    expect(await schemaOf(tenantBinding(env, behind!)!)).toBe(PREVIOUS);
    const resumed = await admin("/v1/platform/migrations/mig_paused/resume", { method: "POST" });
    expectStatus(resumed, 200);
    expect(resumed.body.status).toBe("running");
    expect((await settle("mig_paused")).body.status).toBe("completed");
    expect(await schemaOf(tenantBinding(env, behind!)!)).toBe(LATEST_SCHEMA);
    expectProblem(await admin("/v1/platform/migrations/mig_paused/resume", { method: "POST" }), 409, "ROLLOUT_STATE");
    expectProblem(await admin("/v1/platform/migrations/mig_nope"), 404, "NOT_FOUND");
    const listed = await admin("/v1/platform/migrations");
    expect(listed.body.data.map((r: { id: string }) => r.id)).toContain("mig_paused");
  });
});
