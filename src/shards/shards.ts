import { and, asc, desc, eq, isNull, sql } from "drizzle-orm";
import { type Env, loadConfig } from "../env";
import { ApiError } from "../lib/errors";
import { createLogger, errorFields } from "../lib/log";
import { migrationRollouts, tenantDatabases, tenants } from "../db/control/schema";
import { controlDb, type Jurisdiction } from "../db/router";
import { SHARD_NAME, shardBinding, shardScript } from "./names";

// Shards: past the ~5,000 databases one Worker can bind, tenants are spread over several Workers,
// each binding its own pool. The control database maps each database (and so its tenant) to a
// shard; a router Worker (shard s1, which also serves its own tenants) sends every other request to
// its tenant's shard: through a service binding `SHARD_S2` locally, or through a Workers for
// Platforms dispatch namespace (`DISPATCHER`) in production. README, "Shards".

/** The shard this Worker is. */
export const ownShard = (env: Env): string => loadConfig(env).SHARD;

/** What a Worker reaches another shard through: its service binding, else the dispatch namespace. */
function shardFetcher(env: Env, shard: string): Fetcher | undefined {
  const bound = env[shardBinding(shard)];
  if (bound) return bound;
  return env.DISPATCHER?.get(shardScript(shard));
}

/** A router reaches other shards; a shard that is not one serves only its own tenants. */
export const isRouter = (env: Env): boolean => env.DISPATCHER !== undefined || Object.keys(env).some((k) => k.startsWith("SHARD_"));

/** Whether this Worker serves `shard` or can reach it. */
function reachable(env: Env, shard: string): boolean {
  return shard === ownShard(env) || shardFetcher(env, shard) !== undefined;
}

/**
 * Sends the request to `shard`'s Worker (method, headers, body, a WebSocket upgrade; its request id
 * carried over) and answers what it answers; undefined when `shard` is this Worker's own. A shard this Worker cannot
 * reach is a deploy error the caller hears about as 503 naming it, never a request served here.
 */
export async function forwardTo(env: Env, shard: string, request: Request, requestId: string): Promise<Response | undefined> {
  if (shard === ownShard(env)) return undefined;
  const fetcher = isRouter(env) ? shardFetcher(env, shard) : undefined;
  if (!fetcher) {
    // A shard that is not the router got another shard's request: its host record is stale (a
    // tenant just moved). The router's own record is refreshed by the move; asking again works.
    throw new ApiError("SHARD_UNAVAILABLE", `This tenant is served by shard ${shard}, which this Worker (shard ${ownShard(env)}) does not reach`, { headers: { "retry-after": "5" } });
  }
  // One request id across the hop: the shard logs and answers under the id the router gave it.
  const headers = new Headers(request.headers);
  headers.set("x-request-id", requestId);
  try {
    return await fetcher.fetch(new Request(request, { headers }));
  } catch (err) {
    // A dispatch namespace without the shard's Worker throws here: the deploy is missing a shard.
    createLogger({ request_id: requestId }).error("shard.unreachable", { ...errorFields(err), shard });
    throw new ApiError("SHARD_UNAVAILABLE", `Shard ${shard} did not answer; try again shortly`, { headers: { "retry-after": "30" } });
  }
}

/**
 * Where a signup goes: the reachable shard with the most free databases in its jurisdiction (so new
 * tenants spread over shards as their pools allow); this Worker's own shard when none has one, so
 * the refusal (503 naming the jurisdiction and shard) comes from the path that claims.
 */
export async function placeSignup(env: Env, jurisdiction: Jurisdiction): Promise<string> {
  const rows = await controlDb(env)
    .select({ shard: tenantDatabases.shard, free: sql<number>`count(*)` })
    .from(tenantDatabases)
    .where(and(isNull(tenantDatabases.tenantId), eq(tenantDatabases.jurisdiction, jurisdiction)))
    .groupBy(tenantDatabases.shard)
    .orderBy(desc(sql`count(*)`), asc(tenantDatabases.shard));
  return rows.find((r) => reachable(env, r.shard))?.shard ?? ownShard(env);
}

/** The shard a tenant's database is on, by the tenant's id; undefined for an unknown tenant. */
export async function shardOfTenant(env: Env, tenantId: string): Promise<string | undefined> {
  const row = await controlDb(env)
    .select({ shard: tenantDatabases.shard })
    .from(tenants)
    .innerJoin(tenantDatabases, eq(tenantDatabases.binding, tenants.dbBinding))
    .where(eq(tenants.id, tenantId))
    .get();
  return row?.shard;
}

/**
 * The shards this Worker knows of, for `?shard=`: itself, those it has a binding to, and those the
 * pool has databases on. Behind a dispatch namespace any well-formed name may be a shard not yet
 * in the pool (its first sync); one with no Worker there answers 503 SHARD_UNAVAILABLE.
 */
async function isKnownShard(env: Env, shard: string): Promise<boolean> {
  if (shard === ownShard(env) || env[shardBinding(shard)] !== undefined || env.DISPATCHER !== undefined) return true;
  return (await controlDb(env).select({ shard: tenantDatabases.shard }).from(tenantDatabases).where(eq(tenantDatabases.shard, shard)).limit(1).get()) !== undefined;
}

const TENANT_PATH = /^\/v1\/platform\/tenants\/([^/]+)(?:\/|$)/;
const POOL_PATH = /^\/v1\/platform\/(?:databases|migrations)(?:\/|$)/;
const ROLLOUT_PATH = /^\/v1\/platform\/migrations\/([^/]+)(?:\/|$)/;

/**
 * The shard a platform request is for: a signup goes where its jurisdiction has the most free
 * databases; an operator's request about a tenant goes to that tenant's shard (erasing it needs its
 * database), one about a rollout to the rollout's; the pool and rollout routes act on the shard
 * named by `?shard=` (this one by default).
 * Everything else is the control database's, served by whichever Worker has it.
 */
export async function platformShard(env: Env, request: Request): Promise<string> {
  const url = new URL(request.url);
  // A Worker that reaches no other shard serves every platform request itself (a `?shard=` is still checked).
  if (!isRouter(env) && !url.searchParams.has("shard")) return ownShard(env);
  if (url.pathname === "/v1/signup" && request.method === "POST") {
    const body = await request
      .clone()
      .json()
      .catch(() => null);
    const jurisdiction = (body as { tenant?: { jurisdiction?: unknown } } | null)?.tenant?.jurisdiction ?? "default";
    // A body the signup route would refuse is refused here, by this Worker's own validation.
    return jurisdiction === "default" || jurisdiction === "eu" ? placeSignup(env, jurisdiction) : ownShard(env);
  }
  const tenantId = TENANT_PATH.exec(url.pathname)?.[1];
  if (tenantId) return (await shardOfTenant(env, decodeURIComponent(tenantId))) ?? ownShard(env);
  const rolloutId = ROLLOUT_PATH.exec(url.pathname)?.[1];
  if (rolloutId) {
    const row = await controlDb(env).select({ shard: migrationRollouts.shard }).from(migrationRollouts).where(eq(migrationRollouts.id, decodeURIComponent(rolloutId))).get();
    return row?.shard ?? ownShard(env);
  }
  const named = url.searchParams.get("shard");
  if (named !== null && POOL_PATH.test(url.pathname)) {
    if (!SHARD_NAME.test(named) || !(await isKnownShard(env, named))) {
      throw new ApiError("VALIDATION_FAILED", `No shard ${named} is reachable from shard ${ownShard(env)}`, { errors: [{ in: "query", field: "shard", message: "a shard this router binds (s1, s2, …)" }] });
    }
    return named;
  }
  return ownShard(env);
}

/**
 * A queue's name as this code knows it (`tessera-runs`): each shard consumes its own queues,
 * prefixed with its Worker's name (`tessera-s2-runs`), since a queue has one consumer Worker.
 */
export function canonicalQueue(env: Env, queue: string): string {
  const prefix = `${shardScript(ownShard(env))}-`;
  return queue.startsWith(prefix) ? `tessera-${queue.slice(prefix.length)}` : queue;
}
