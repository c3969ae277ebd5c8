import { isNotNull, isNull, sql } from "drizzle-orm";
import type { Env } from "../env";
import { tenantDatabases } from "./control/schema";
import { boundTenantDatabases, controlDb, tenantBinding } from "./router";

/** Counts of the tenant database pool. */
export interface PoolStatus {
  bound: number;
  registered: number;
  free: number;
  assigned: number;
}

/** How many tenant databases are bound, registered, free and assigned. */
export async function poolStatus(env: Env): Promise<PoolStatus> {
  const db = controlDb(env);
  const [free, assigned] = await db.batch([
    db.select({ n: sql<number>`count(*)` }).from(tenantDatabases).where(isNull(tenantDatabases.tenantId)),
    db.select({ n: sql<number>`count(*)` }).from(tenantDatabases).where(isNotNull(tenantDatabases.tenantId)),
  ]);
  const f = free[0]?.n ?? 0;
  const a = assigned[0]?.n ?? 0;
  return { bound: boundTenantDatabases(env).length, registered: f + a, free: f, assigned: a };
}

/**
 * Registers every bound tenant database that has its migrations applied and is not in the
 * pool yet. A database is only ever handed to a signup once it is registered, so a binding
 * deployed before `npm run db:migrate` reached it is never used half-made.
 */
export async function syncPool(env: Env): Promise<{ registered: string[]; unmigrated: string[]; status: PoolStatus }> {
  const db = controlDb(env);
  const known = new Set((await db.select({ binding: tenantDatabases.binding }).from(tenantDatabases)).map((r) => r.binding));
  const registered: string[] = [];
  const unmigrated: string[] = [];
  for (const binding of boundTenantDatabases(env)) {
    if (known.has(binding)) continue;
    const migration = await latestMigration(tenantBinding(env, binding)!);
    if (!migration) {
      unmigrated.push(binding);
      continue;
    }
    await db.insert(tenantDatabases).values({ binding, migration }).onConflictDoNothing().run();
    registered.push(binding);
  }
  return { registered, unmigrated, status: await poolStatus(env) };
}

async function latestMigration(d1: D1Database): Promise<string | null> {
  try {
    const row = await d1.prepare("SELECT name FROM d1_migrations ORDER BY id DESC LIMIT 1").first<{ name: string }>();
    return row?.name ?? null;
  } catch {
    // No d1_migrations table: migrations were never applied to this database.
    return null;
  }
}
