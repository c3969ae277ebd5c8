import { and, asc, count, desc, eq, gte, lt, lte } from "drizzle-orm";
import type { Env } from "../../env";
import { ApiError } from "../../lib/errors";
import { newId } from "../../lib/ids";
import { createLogger, errorFields } from "../../lib/log";
import { migrationRollouts, tenantDatabases } from "../control/schema";
import { publishTenant } from "../directory";
import { controlDb, tenantBinding } from "../router";
import { ownShard } from "../../shards/shards";
import { LATEST_SCHEMA, MigrationFailed, migrateTo, schemaOf } from "./apply";
import { BUNDLED_MIGRATIONS } from "./tenant.generated";

// Schema rollouts over the tenant database pool: rules and SQL here, the MigrationRunner Durable
// Object's alarm calls `stepRollout` until it answers that nothing is left.

/** Databases migrated at once in a step: bounded, so a rollout never floods D1 or the Worker. */
export const ROLLOUT_CONCURRENCY = 8;

type Row = typeof migrationRollouts.$inferSelect;

/** This shard's databases: a shard's Worker binds only its own, so it migrates only those. */
const onShard = (env: Env) => eq(tenantDatabases.shard, ownShard(env));

/** The runner: one object per shard's Worker drives its rollouts, so steps never overlap. */
const runner = (env: Env) => env.MIGRATION_RUNNER.get(env.MIGRATION_RUNNER.idFromName("platform"));

/** Starts a rollout to `target` (the newest bundled migration by default); 409 while another runs or is paused. */
export async function startRollout(env: Env, body: { target?: string; canary?: number }): Promise<Row> {
  const target = body.target ?? LATEST_SCHEMA;
  if (!BUNDLED_MIGRATIONS.some((m) => m.name === target)) {
    throw new ApiError("VALIDATION_FAILED", `No migration ${target} is bundled with this Worker`, { errors: [{ in: "body", field: "target", message: `one of ${BUNDLED_MIGRATIONS.at(0)!.name} … ${LATEST_SCHEMA}` }] });
  }
  const db = controlDb(env);
  const total = (await db.select({ n: count() }).from(tenantDatabases).where(onShard(env)).get())?.n ?? 0;
  const row = { id: newId("mig"), target, canary: body.canary ?? 0, total, shard: ownShard(env) };
  const made = await db.insert(migrationRollouts).values(row).onConflictDoNothing().returning().get();
  if (!made) throw new ApiError("ROLLOUT_ACTIVE", `Another rollout is running or paused on shard ${row.shard}: finish, or let it fail, first`);
  await runner(env).run(made.id);
  return made;
}

/** Pauses a running rollout (the step under way finishes) or resumes a paused one. */
export async function setPaused(env: Env, id: string, paused: boolean): Promise<Row> {
  const db = controlDb(env);
  const [from, to] = paused ? (["running", "paused"] as const) : (["paused", "running"] as const);
  const row = await db
    .update(migrationRollouts)
    .set({ status: to, updatedAt: new Date().toISOString() })
    .where(and(eq(migrationRollouts.id, id), eq(migrationRollouts.shard, ownShard(env)), eq(migrationRollouts.status, from)))
    .returning()
    .get();
  if (!row) {
    await requireRollout(env, id);
    throw new ApiError("ROLLOUT_STATE", `Only a ${from} rollout can be ${paused ? "paused" : "resumed"}`);
  }
  if (!paused) await runner(env).run(id);
  return row;
}

async function requireRollout(env: Env, id: string): Promise<Row> {
  const row = await controlDb(env).select().from(migrationRollouts).where(and(eq(migrationRollouts.id, id), eq(migrationRollouts.shard, ownShard(env)))).get();
  if (!row) throw new ApiError("NOT_FOUND", "No such rollout");
  return row;
}

/** How many of this shard's databases are at or past `target`. */
async function doneAt(env: Env, target: string): Promise<number> {
  return (await controlDb(env).select({ n: count() }).from(tenantDatabases).where(and(onShard(env), gte(tenantDatabases.migration, target))).get())?.n ?? 0;
}

/** The databases at or past the rollout's target, and how many the failure holds back. */
function progressOf(row: Row, done: number) {
  const failed = row.failedBinding ? 1 : 0;
  return { done, failed, pending: Math.max(0, row.total - done - failed) };
}

/** A rollout as the API shows it; with `databases`, where each database of the pool is. */
export async function renderRollout(env: Env, id: string, databases = false) {
  const row = await requireRollout(env, id);
  const rendered = render(row, await doneAt(env, row.target));
  if (!databases) return rendered;
  const rows = await controlDb(env).select({ binding: tenantDatabases.binding, tenantId: tenantDatabases.tenantId, migration: tenantDatabases.migration }).from(tenantDatabases).where(onShard(env)).orderBy(asc(tenantDatabases.binding));
  return {
    ...rendered,
    databases: rows.map((d) => ({ database: d.binding, tenant_id: d.tenantId, schema: d.migration, state: (d.binding === row.failedBinding ? "failed" : d.migration >= row.target ? "done" : "pending") as "failed" | "done" | "pending" })),
  };
}

/**
 * A database's schema as the pool records it, read from the database itself, and published with its
 * tenant's host record: for a record that lags (the pool wrote it once at registration before it
 * kept it current), so the schema gate answers from the truth. Answers the schema.
 */
export async function refreshSchema(env: Env, binding: string, tenantId: string | null): Promise<string | null> {
  const d1 = tenantBinding(env, binding);
  const schema = d1 ? await schemaOf(d1) : null;
  if (schema) await controlDb(env).update(tenantDatabases).set({ migration: schema }).where(eq(tenantDatabases.binding, binding)).run();
  if (tenantId) await publishTenant(env, tenantId);
  return schema;
}

function render(row: Row, done: number) {
  return {
    id: row.id,
    target: row.target,
    canary: row.canary,
    shard: row.shard,
    status: row.status,
    total: row.total,
    progress: progressOf(row, done),
    failure: row.failedBinding ? { database: row.failedBinding, migration: row.failedMigration, statement: row.failedStatement, error: row.error ?? "" } : null,
    created_at: row.createdAt,
    updated_at: row.updatedAt,
    completed_at: row.completedAt,
  };
}

/** The newest rollouts first: read once, with one count per distinct target (most share one). */
export async function listRollouts(env: Env) {
  const rows = await controlDb(env).select().from(migrationRollouts).where(eq(migrationRollouts.shard, ownShard(env))).orderBy(desc(migrationRollouts.id)).limit(20);
  const done = new Map(await Promise.all([...new Set(rows.map((r) => r.target))].map(async (t) => [t, await doneAt(env, t)] as const)));
  return rows.map((r) => render(r, done.get(r.target)!));
}

/**
 * One step of a running rollout: the next few databases behind its target — the canary databases
 * (the first `canary` by binding) until every one of them is done, then the rest — migrated side
 * by side. A failure stops the rollout and records the database, migration and statement (that
 * database stays at its last whole migration). Answers whether another step is wanted.
 */
export async function stepRollout(env: Env, id: string): Promise<boolean> {
  const db = controlDb(env);
  const row = await db.select().from(migrationRollouts).where(eq(migrationRollouts.id, id)).get();
  if (row?.status !== "running") return false;
  const behind = and(onShard(env), lt(tenantDatabases.migration, row.target))!;
  const edge = row.canary > 0 ? (await db.select({ binding: tenantDatabases.binding }).from(tenantDatabases).where(onShard(env)).orderBy(asc(tenantDatabases.binding)).limit(1).offset(row.canary - 1).get())?.binding : undefined;
  const pick = (where: typeof behind) => db.select({ binding: tenantDatabases.binding, tenantId: tenantDatabases.tenantId }).from(tenantDatabases).where(where).orderBy(asc(tenantDatabases.binding)).limit(ROLLOUT_CONCURRENCY);
  let work = edge ? await pick(and(behind, lte(tenantDatabases.binding, edge))!) : [];
  if (work.length === 0) work = await pick(behind);
  const now = () => new Date().toISOString();
  if (work.length === 0) {
    await db.update(migrationRollouts).set({ status: "completed", updatedAt: now(), completedAt: now() }).where(and(eq(migrationRollouts.id, id), eq(migrationRollouts.status, "running"))).run();
    return false;
  }
  const results = await Promise.all(
    work.map(async (d) => {
      try {
        const d1 = tenantBinding(env, d.binding);
        if (!d1) throw new MigrationFailed("", "", -1, `${d.binding} is not bound to this Worker`);
        const { to } = await migrateTo(d1, row.target);
        await db.update(tenantDatabases).set({ migration: to ?? row.target }).where(eq(tenantDatabases.binding, d.binding)).run();
        // The tenant's cached record carries its schema: requests held back with 503 go through again.
        if (d.tenantId) await publishTenant(env, d.tenantId);
        return null;
      } catch (err) {
        return { binding: d.binding, err };
      }
    }),
  );
  const failure = results.find((r) => r !== null);
  if (failure) {
    const f = failure.err instanceof MigrationFailed ? failure.err : null;
    createLogger({ component: "migrations" }).error("migrations.failed", { ...errorFields(failure.err), rollout_id: id, database: failure.binding });
    await db
      .update(migrationRollouts)
      .set({ status: "failed", failedBinding: failure.binding, failedMigration: f?.migration || null, failedStatement: f?.statement || null, error: failure.err instanceof Error ? failure.err.message : String(failure.err), updatedAt: now() })
      .where(eq(migrationRollouts.id, id))
      .run();
    return false;
  }
  await db.update(migrationRollouts).set({ updatedAt: now() }).where(eq(migrationRollouts.id, id)).run();
  return true;
}
