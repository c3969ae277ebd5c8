import { and, count, desc, eq, inArray, lt, ne, or, type SQL } from "drizzle-orm";
import type { Context } from "hono";
import { CLOSE_CODES } from "../../durable-objects/conversation-protocol";
import type { AppEnv } from "../context";
import { closeSockets } from "../conversations/sockets";
import { recordAudit } from "../db/audit";
import { hostnames, plans, tenantDatabases, tenants } from "../db/control/schema";
import { moveCredit } from "../db/credits";
import { publishTenant } from "../db/directory";
import { controlDb } from "../db/router";
import { ApiError } from "../lib/errors";
import { decodeCursor, page } from "../lib/pagination";

export type TenantRow = typeof tenants.$inferSelect;

/** The tenant `ref` names, by id or slug, or 404. */
export async function findTenant(c: Context<AppEnv>, ref: string): Promise<TenantRow> {
  const row = await controlDb(c.env)
    .select()
    .from(tenants)
    .where(or(eq(tenants.id, ref), eq(tenants.slug, ref)))
    .get();
  if (!row) throw new ApiError("NOT_FOUND", `No tenant ${ref}`);
  return row;
}

export async function changeStatus(c: Context<AppEnv>, id: string, status: "active" | "suspended") {
  const db = controlDb(c.env);
  const tenant = await findTenant(c, id);
  // An erasure, once asked for, is not undone by a status change.
  const updated = await db
    .update(tenants)
    .set({ status, updatedAt: new Date().toISOString() })
    .where(and(eq(tenants.id, tenant.id), inArray(tenants.status, ["active", "suspended"])))
    .returning()
    .get();
  if (!updated) throw new ApiError("CONFLICT", `The tenant is ${tenant.status === "erased" ? "erased" : "being erased"}; its status no longer changes`);
  await publishTenant(c.env, tenant.id);
  // Open sockets do not pass the host check again: a suspension closes them itself (4403).
  if (status === "suspended") await closeSockets(c.env, updated, { everyone: true }, CLOSE_CODES.suspended, "tenant suspended");
  const action = status === "suspended" ? "tenant.suspended" : "tenant.reactivated";
  await recordAudit(c, { action, resourceType: "tenant", resourceId: tenant.id }, { tenant: updated, actor: { type: "platform" } });
  return updated;
}

/**
 * The rows with the shard each tenant's database is on (the Worker that serves it), in one read;
 * null once the tenant no longer holds a database (erased).
 */
export async function withShards<T extends { id: string; dbBinding: string }>(c: Context<AppEnv>, rows: T[]): Promise<(T & { shard: string | null })[]> {
  if (!rows.length) return [];
  const held = await controlDb(c.env)
    .select({ binding: tenantDatabases.binding, tenantId: tenantDatabases.tenantId, shard: tenantDatabases.shard })
    .from(tenantDatabases)
    .where(inArray(tenantDatabases.binding, rows.map((r) => r.dbBinding)));
  const shardOf = new Map(held.filter((d) => d.tenantId !== null).map((d) => [`${d.tenantId}:${d.binding}`, d.shard]));
  return rows.map((r) => ({ ...r, shard: shardOf.get(`${r.id}:${r.dbBinding}`) ?? null }));
}

/** Tenants, newest first, optionally by status. */
export async function listTenants(c: Context<AppEnv>, { limit, cursor, status }: { limit: number; cursor?: string; status?: TenantRow["status"] }) {
  const conditions: SQL[] = [];
  if (status) conditions.push(eq(tenants.status, status));
  if (cursor) conditions.push(lt(tenants.id, decodeCursor(cursor, "ten")));
  const rows = await controlDb(c.env)
    .select()
    .from(tenants)
    .where(and(...conditions))
    .orderBy(desc(tenants.id))
    .limit(limit + 1);
  return page(rows, limit, (t) => t);
}

/** Every plan with its limits, and how many tenants (not erased) are on it. */
export async function listPlans(c: Context<AppEnv>) {
  const db = controlDb(c.env);
  const [rows, counts] = await db.batch([
    db.select().from(plans).orderBy(plans.monthlyTokens),
    db.select({ plan: tenants.planId, n: count() }).from(tenants).where(ne(tenants.status, "erased")).groupBy(tenants.planId),
  ]);
  const on = new Map(counts.map((r) => [r.plan, r.n]));
  return rows.map((p) => ({
    id: p.id,
    name: p.name,
    requests_per_minute: p.requestsPerMinute,
    member_requests_per_minute: p.memberRequestsPerMinute,
    monthly_tokens: p.monthlyTokens,
    seats: p.seats,
    projects: p.projects,
    storage_bytes: p.storageBytes,
    tenants: on.get(p.id) ?? 0,
  }));
}

/** Moves a tenant to another plan (which must exist). */
export async function changePlan(c: Context<AppEnv>, ref: string, plan: string): Promise<TenantRow> {
  const tenant = await findTenant(c, ref);
  const db = controlDb(c.env);
  if (!(await db.select({ id: plans.id }).from(plans).where(eq(plans.id, plan)).get())) {
    throw new ApiError("VALIDATION_FAILED", `No plan ${plan}`, { errors: [{ in: "body", field: "plan", message: "no such plan" }] });
  }
  const updated = (await db.update(tenants).set({ planId: plan, updatedAt: new Date().toISOString() }).where(eq(tenants.id, tenant.id)).returning().get())!;
  await publishTenant(c.env, tenant.id);
  await recordAudit(c, { action: "tenant.plan_changed", resourceType: "tenant", resourceId: tenant.id, details: { from: tenant.planId, to: plan } }, { tenant: updated, actor: { type: "platform" } });
  return updated;
}

/** Grants prepaid credit; answers the balance after it. */
export async function grantCredits(c: Context<AppEnv>, ref: string, body: { amount_micros: number; reason: string }) {
  const tenant = await findTenant(c, ref);
  const balance = await moveCredit(controlDb(c.env), { tenantId: tenant.id, amountMicros: body.amount_micros, kind: "grant", reason: body.reason });
  await recordAudit(c, { action: "tenant.credits_granted", resourceType: "tenant", resourceId: tenant.id, details: { amount_micros: body.amount_micros, reason: body.reason } }, { tenant, actor: { type: "platform" } });
  return { tenant_id: tenant.id, balance_micros: balance };
}

/** Attaches a verified custom hostname to a tenant (never one under the platform's own domain). */
export async function attachDomain(c: Context<AppEnv>, body: { hostname: string; tenant: string }) {
  const base = c.var.config.BASE_DOMAIN;
  if (body.hostname === base || body.hostname.endsWith(`.${base}`)) {
    throw new ApiError("VALIDATION_FAILED", "Hosts under the platform domain are tenants' subdomains, not custom hostnames", {
      errors: [{ in: "body", field: "hostname", message: `must not be under ${base}` }],
    });
  }
  const tenant = await findTenant(c, body.tenant);
  const verifiedAt = new Date().toISOString();
  const inserted = await controlDb(c.env)
    .insert(hostnames)
    .values({ hostname: body.hostname, tenantId: tenant.id, verifiedAt })
    .onConflictDoNothing()
    .returning()
    .get();
  if (!inserted) throw new ApiError("CONFLICT", `${body.hostname} is already attached`, { errors: [{ in: "body", field: "hostname", message: "already attached" }] });
  await publishTenant(c.env, tenant.id);
  await recordAudit(c, { action: "domain.attached", resourceType: "hostname", resourceId: body.hostname }, { tenant, actor: { type: "platform" } });
  return { hostname: inserted.hostname, tenant_id: tenant.id, verified_at: verifiedAt };
}

/** Attached hostnames, of one tenant or all. */
export async function listDomains(c: Context<AppEnv>, ref: string | undefined) {
  const tenantId = ref ? (await findTenant(c, ref)).id : undefined;
  const rows = await controlDb(c.env)
    .select()
    .from(hostnames)
    .where(tenantId ? eq(hostnames.tenantId, tenantId) : undefined)
    .orderBy(hostnames.hostname);
  return rows.map((h) => ({ hostname: h.hostname, tenant_id: h.tenantId, verified_at: h.verifiedAt }));
}

/** Detaches a hostname; the host stops resolving to its tenant at once. */
export async function detachDomain(c: Context<AppEnv>, hostname: string): Promise<void> {
  const deleted = await controlDb(c.env).delete(hostnames).where(eq(hostnames.hostname, hostname)).returning().get();
  if (!deleted) throw new ApiError("NOT_FOUND", `${hostname} is not attached`);
  await publishTenant(c.env, deleted.tenantId, [hostname]);
  const tenant = await findTenant(c, deleted.tenantId);
  await recordAudit(c, { action: "domain.detached", resourceType: "hostname", resourceId: hostname }, { tenant, actor: { type: "platform" } });
}
