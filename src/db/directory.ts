import { eq } from "drizzle-orm";
import type { Env } from "../env";
import { TtlCache } from "../lib/ttl-cache";
import { hostnames, tenants } from "./control/schema";
import { controlDb } from "./router";

/** What a request needs to know about its tenant; cached per host. */
export interface TenantRecord {
  id: string;
  slug: string;
  name: string;
  status: "active" | "suspended";
  planId: string;
  dbBinding: string;
}

/** Where a host points: the platform itself, a tenant, or nothing. */
export type HostTarget = { kind: "platform" } | { kind: "tenant"; tenant: TenantRecord } | { kind: "unknown" };

const SLUG_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const KV_TTL_SECONDS = 3600;
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
 * Looks in this isolate's memory (a few seconds), then KV (shared, invalidated on change),
 * then the control database.
 */
export async function resolveHost(env: Env, rawHost: string, ttlSeconds: number, waitUntil: (p: Promise<unknown>) => void): Promise<HostTarget> {
  const host = normalizeHost(rawHost);
  const base = env.BASE_DOMAIN;
  if (host === base) return { kind: "platform" };

  const hit = memory.get(host);
  if (hit) return hit.tenant ? { kind: "tenant", tenant: hit.tenant } : { kind: "unknown" };

  let tenant = await env.TENANT_CACHE.get<TenantRecord>(kvKey(host), "json");
  if (!tenant) {
    tenant = await lookupHost(env, host);
    // Only hits go to KV: caching misses there would let a flood of made-up hosts become KV writes.
    if (tenant) waitUntil(env.TENANT_CACHE.put(kvKey(host), JSON.stringify(tenant), { expirationTtl: KV_TTL_SECONDS }));
  }
  memory.set(host, { tenant }, ttlSeconds * 1000);
  return tenant ? { kind: "tenant", tenant } : { kind: "unknown" };
}

async function lookupHost(env: Env, host: string): Promise<TenantRecord | null> {
  const db = controlDb(env);
  const suffix = `.${env.BASE_DOMAIN}`;
  const columns = { id: tenants.id, slug: tenants.slug, name: tenants.name, status: tenants.status, planId: tenants.planId, dbBinding: tenants.dbBinding };
  if (host.endsWith(suffix)) {
    const slug = host.slice(0, -suffix.length);
    if (!SLUG_LABEL.test(slug)) return null;
    return (await db.select(columns).from(tenants).where(eq(tenants.slug, slug)).get()) ?? null;
  }
  const row = await db.select(columns).from(hostnames).innerJoin(tenants, eq(hostnames.tenantId, tenants.id)).where(eq(hostnames.hostname, host)).get();
  return row ?? null;
}

/** Every host that reaches a tenant: its subdomain and its attached hostnames. */
export async function hostsOfTenant(env: Env, tenant: { id: string; slug: string }): Promise<string[]> {
  const rows = await controlDb(env).select({ hostname: hostnames.hostname }).from(hostnames).where(eq(hostnames.tenantId, tenant.id));
  return [`${tenant.slug}.${env.BASE_DOMAIN}`, ...rows.map((r) => r.hostname)];
}

/**
 * Drops cached lookups for these hosts, in KV for every isolate and in this isolate's
 * memory. Other isolates may serve their memory copy for up to TENANT_CACHE_TTL_SECONDS.
 */
export async function invalidateHosts(env: Env, hosts: string[]): Promise<void> {
  for (const host of hosts) memory.delete(normalizeHost(host));
  await Promise.all(hosts.map((h) => env.TENANT_CACHE.delete(kvKey(normalizeHost(h)))));
}
