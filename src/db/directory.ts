import { eq } from "drizzle-orm";
import { type Env, loadConfig } from "../env";
import { TtlCache } from "../lib/ttl-cache";
import { hostnames, type TENANT_STATUSES, tenantDatabases, tenants } from "./control/schema";
import { controlDb, type Jurisdiction } from "./router";

/** What a request needs to know about its tenant; cached per host. */
export interface TenantRecord {
  id: string;
  slug: string;
  name: string;
  status: (typeof TENANT_STATUSES)[number];
  planId: string;
  dbBinding: string;
  /** The newest migration applied to its database (the pool's record of it), for the schema gate. */
  schema?: string | null;
  /** Where its data lives (its database, R2 objects and Durable Objects). */
  jurisdiction: Jurisdiction;
  /** The shard whose Worker binds its database (`s1` for records cached before shards). */
  shard?: string | null;
}

/** Where a host points: the platform itself, a tenant, or nothing. */
export type HostTarget = { kind: "platform" } | { kind: "tenant"; tenant: TenantRecord } | { kind: "unknown" };

/** A tenant being erased, or erased: no host reaches it and no queue message is handled for it. */
export const isGone = (t: { status: string }) => t.status === "erasing" || t.status === "erased";

const SLUG_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const memory = new TtlCache<{ tenant: TenantRecord | null }>(2000);

const kvKey = (host: string) => `host:${host}`;

/** Lowercases a Host header and drops its port and trailing dot. */
export function normalizeHost(raw: string): string {
  const host = raw.trim().toLowerCase();
  const withoutPort = host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.split(":")[0]!;
  return withoutPort.replace(/\.$/, "");
}

/**
 * Resolves a host to its tenant: `{slug}.{BASE_DOMAIN}` or an attached custom hostname.
 * Looks in this isolate's memory (a few seconds), then KV, then the control database.
 *
 * Only the changes themselves write KV (`publishTenant`), with the state they just wrote; a
 * request never does. A request that read the database just before a suspension could otherwise
 * put the tenant back in KV as active after the suspension had replaced it.
 */
export async function resolveHost(env: Env, rawHost: string, ttlSeconds: number): Promise<HostTarget> {
  const host = normalizeHost(rawHost);
  const base = loadConfig(env).BASE_DOMAIN;
  if (host === base) return { kind: "platform" };

  const hit = memory.get(host);
  if (hit) return hit.tenant ? { kind: "tenant", tenant: hit.tenant } : { kind: "unknown" };

  let tenant = await env.TENANT_CACHE.get<TenantRecord>(kvKey(host), "json");
  // A record cached before records carried the tenant's placement is read again from the database:
  // answering from it would put an EU tenant's objects in the default bucket.
  if (tenant?.jurisdiction === undefined || tenant.shard === undefined) tenant = await lookupHost(env, host);
  if (tenant && isGone(tenant)) tenant = null;
  memory.set(host, { tenant }, ttlSeconds * 1000);
  return tenant ? { kind: "tenant", tenant } : { kind: "unknown" };
}

const columns = { id: tenants.id, slug: tenants.slug, name: tenants.name, status: tenants.status, planId: tenants.planId, dbBinding: tenants.dbBinding, jurisdiction: tenants.jurisdiction, schema: tenantDatabases.migration, shard: tenantDatabases.shard };
const ofDatabase = eq(tenantDatabases.binding, tenants.dbBinding);

async function lookupHost(env: Env, host: string): Promise<TenantRecord | null> {
  const db = controlDb(env);
  const suffix = `.${loadConfig(env).BASE_DOMAIN}`;
  if (host.endsWith(suffix)) {
    const slug = host.slice(0, -suffix.length);
    if (!SLUG_LABEL.test(slug)) return null;
    return (await db.select(columns).from(tenants).leftJoin(tenantDatabases, ofDatabase).where(eq(tenants.slug, slug)).get()) ?? null;
  }
  const row = await db.select(columns).from(hostnames).innerJoin(tenants, eq(hostnames.tenantId, tenants.id)).leftJoin(tenantDatabases, ofDatabase).where(eq(hostnames.hostname, host)).get();
  return row ?? null;
}

/**
 * After a change to a tenant or its hostnames: reads the tenant as it now is and writes that record
 * under every host that reaches it (and drops `detached` hosts), in KV for every isolate and in
 * this isolate's memory. Other isolates may serve their memory copy for TENANT_CACHE_TTL_SECONDS,
 * and KV takes up to a minute to reach every Cloudflare location.
 */
export async function publishTenant(env: Env, tenantId: string, detached: string[] = []): Promise<void> {
  const db = controlDb(env);
  const [tenant, attached] = await db.batch([
    db.select(columns).from(tenants).leftJoin(tenantDatabases, ofDatabase).where(eq(tenants.id, tenantId)),
    db.select({ hostname: hostnames.hostname }).from(hostnames).where(eq(hostnames.tenantId, tenantId)),
  ]);
  const record = tenant[0];
  byId.delete(tenantId);
  for (const host of detached) memory.delete(normalizeHost(host));
  await Promise.all(detached.map((h) => env.TENANT_CACHE.delete(kvKey(normalizeHost(h)))));
  if (!record?.dbBinding) return;
  const hosts = [`${record.slug}.${loadConfig(env).BASE_DOMAIN}`, ...attached.map((r) => r.hostname)].map(normalizeHost);
  for (const host of hosts) memory.delete(host);
  // A tenant being erased leaves KV: its hosts answer as unknown from the next lookup on.
  if (isGone(record)) return void (await Promise.all(hosts.map((h) => env.TENANT_CACHE.delete(kvKey(h)))));
  await Promise.all(hosts.map((h) => env.TENANT_CACHE.put(kvKey(h), JSON.stringify(record))));
}

/** Tenants by id for a few seconds: a queue batch's messages mostly share one, and a suspension may take that long to be seen. */
const byId = new TtlCache<typeof tenants.$inferSelect>(1000);
export const BY_ID_MS = 5000;

/**
 * The tenant with this id (its plan, status and database binding), for queue consumers; undefined
 * when it no longer exists or is being erased, so a message that arrives late for it is dropped.
 */
export async function tenantById(env: Env, tenantId: string): Promise<typeof tenants.$inferSelect | undefined> {
  let tenant = byId.get(tenantId);
  if (!tenant) {
    tenant = await controlDb(env).select().from(tenants).where(eq(tenants.id, tenantId)).get();
    if (tenant) byId.set(tenantId, tenant, BY_ID_MS);
  }
  return tenant && !isGone(tenant) ? tenant : undefined;
}
