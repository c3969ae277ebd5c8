import { sql } from "drizzle-orm";
import { type Env, loadConfig } from "../env";
import { tenantDatabases } from "./control/schema";
import { LATEST_SCHEMA, migrateTo } from "./migrations/apply";
import { ROLLOUT_CONCURRENCY } from "./migrations/rollouts";
import { ownShard } from "../shards/shards";
import { boundTenantDatabases, controlDb, type Jurisdiction, jurisdictionOf, tenantBinding } from "./router";

/** Counts of the tenant database pool. */
export interface PoolStatus {
  bound: number;
  registered: number;
  free: number;
  assigned: number;
  /** Registered databases behind the newest schema this Worker carries (a rollout brings them up). */
  behind: number;
  /** The free count below which the pool warns (POOL_LOW_WATER), and whether it is below. */
  low_water: number;
  low: boolean;
  /** Free and assigned databases in each jurisdiction's pool (a tenant only takes from its own). */
  jurisdictions: Record<Jurisdiction, { free: number; assigned: number }>;
  /** The shard that answered: `bound` counts its bindings, and a rollout or sync started there acts on them. */
  shard: string;
  /** Each shard's databases (a signup goes to the shard with the most free in its jurisdiction). */
  shards: Record<string, { free: number; assigned: number; behind: number }>;
}

/** How many tenant databases are bound, registered, free and assigned: two grouped counts, the totals summed from them. */
export async function poolStatus(env: Env): Promise<PoolStatus> {
  const db = controlDb(env);
  const free = sql<number>`count(*) - count(${tenantDatabases.tenantId})`;
  const assigned = sql<number>`count(${tenantDatabases.tenantId})`;
  const [split, byShard] = await db.batch([
    db.select({ jurisdiction: tenantDatabases.jurisdiction, free, assigned }).from(tenantDatabases).groupBy(tenantDatabases.jurisdiction),
    db
      .select({ shard: tenantDatabases.shard, free, assigned, behind: sql<number>`count(*) FILTER (WHERE ${tenantDatabases.migration} < ${LATEST_SCHEMA})` })
      .from(tenantDatabases)
      .groupBy(tenantDatabases.shard),
  ]);
  const jurisdictions = { default: { free: 0, assigned: 0 }, eu: { free: 0, assigned: 0 } };
  for (const r of split) jurisdictions[r.jurisdiction] = { free: r.free, assigned: r.assigned };
  const total = (key: "free" | "assigned" | "behind") => byShard.reduce((n, r) => n + r[key], 0);
  const [f, a] = [total("free"), total("assigned")];
  const lowWater = loadConfig(env).POOL_LOW_WATER;
  const shards = Object.fromEntries(byShard.map(({ shard, ...counts }) => [shard, counts]));
  return { bound: boundTenantDatabases(env).length, registered: f + a, free: f, assigned: a, behind: total("behind"), low_water: lowWater, low: f < lowWater, jurisdictions, shard: ownShard(env), shards };
}

/**
 * Brings every bound tenant database that is not in the pool yet to the newest bundled schema
 * (through its binding, a few at a time) and registers it. A database is only ever handed to a
 * signup once it is registered, so one whose migration failed is never used half-made: it is
 * listed, with the error, and left out until a later sync succeeds. `limit`: at most that many.
 */
export async function syncPool(env: Env, { limit = Number.POSITIVE_INFINITY, jurisdiction }: { limit?: number; jurisdiction?: Jurisdiction } = {}): Promise<{ registered: string[]; unmigrated: string[]; errors: Record<string, string>; remaining: number; status: PoolStatus }> {
  const db = controlDb(env);
  const known = new Set((await db.select({ binding: tenantDatabases.binding }).from(tenantDatabases)).map((r) => r.binding));
  const candidates = boundTenantDatabases(env).filter((b) => !known.has(b) && (!jurisdiction || jurisdictionOf(b) === jurisdiction));
  const fresh = candidates.slice(0, limit);
  const registered: string[] = [];
  const errors: Record<string, string> = {};
  for (let i = 0; i < fresh.length; i += ROLLOUT_CONCURRENCY) {
    await Promise.all(
      fresh.slice(i, i + ROLLOUT_CONCURRENCY).map(async (binding) => {
        try {
          const { to } = await migrateTo(tenantBinding(env, binding)!);
          await db.insert(tenantDatabases).values({ binding, migration: to ?? LATEST_SCHEMA, jurisdiction: jurisdictionOf(binding), shard: ownShard(env) }).onConflictDoNothing().run();
          registered.push(binding);
        } catch (err) {
          errors[binding] = err instanceof Error ? err.message : String(err);
        }
      }),
    );
  }
  return { registered: registered.sort(), unmigrated: Object.keys(errors).sort(), errors, remaining: candidates.length - registered.length, status: await poolStatus(env) };
}
