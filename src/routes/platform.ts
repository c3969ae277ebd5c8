import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, lt, or, type SQL } from "drizzle-orm";
import type { AppEnv } from "../context";
import { hostnames, plans, tenants } from "../db/control/schema";
import { CLOSE_CODES } from "../../durable-objects/conversation-protocol";
import { closeSockets } from "../conversations/sockets";
import { publishTenant } from "../db/directory";
import { moveCredit } from "../db/credits";
import { poolStatus, syncPool } from "../db/pool";
import { controlDb } from "../db/router";
import { ApiError } from "../lib/errors";
import { decodeCursor, page, PageQuery } from "../lib/pagination";
import { requirePlatformAdmin } from "../middleware/platform-admin";
import { recordAudit } from "../db/audit";
import { errors, jsonBody, jsonResponse, NonBlank, pageOf, renderTenant, router, TenantSchema } from "./openapi";
import type { Context } from "hono";


type TenantRow = typeof tenants.$inferSelect;

/** A tenant as the API shows it (its database binding stays internal). */

const PlatformTenant = TenantSchema.extend({ db_binding: z.string() }).openapi("PlatformTenant");
const admin = [{ platformAdmin: [] }];
const TenantRef = z.object({ id: z.string().min(1).max(64) });

const listTenants = createRoute({
  method: "get",
  path: "/v1/platform/tenants",
  tags: ["Platform"],
  summary: "List tenants",
  security: admin,
  middleware: [requirePlatformAdmin()] as const,
  request: { query: PageQuery.extend({ status: z.enum(["active", "suspended"]).optional() }) },
  responses: { 200: jsonResponse(pageOf(PlatformTenant), "A page of tenants"), ...errors(400, 401) },
});

const setStatus = (action: "suspend" | "reactivate") =>
  createRoute({
    method: "post",
    path: `/v1/platform/tenants/{id}/${action}`,
    tags: ["Platform"],
    summary: action === "suspend" ? "Suspend a tenant: its requests get 403 TENANT_SUSPENDED" : "Reactivate a suspended tenant",
    security: admin,
    middleware: [requirePlatformAdmin()] as const,
    request: { params: TenantRef },
    responses: { 200: jsonResponse(PlatformTenant, "The tenant"), ...errors(401, 404) },
  });

const changePlan = createRoute({
  method: "post",
  path: "/v1/platform/tenants/{id}/plan",
  tags: ["Platform"],
  summary: "Move a tenant to another plan",
  security: admin,
  middleware: [requirePlatformAdmin()] as const,
  request: { params: TenantRef, body: jsonBody(z.object({ plan: z.string().min(1).max(40) })) },
  responses: { 200: jsonResponse(PlatformTenant, "The tenant"), ...errors(400, 401, 404, 415) },
});

const grantCredits = createRoute({
  method: "post",
  path: "/v1/platform/tenants/{id}/credits",
  tags: ["Platform"],
  summary: "Grant prepaid credit to a tenant",
  security: admin,
  middleware: [requirePlatformAdmin()] as const,
  request: {
    params: TenantRef,
    body: jsonBody(z.object({ amount_micros: z.number().int().min(1).max(1_000_000_000_000), reason: NonBlank(200) })),
  },
  responses: { 201: jsonResponse(z.object({ tenant_id: z.string(), balance_micros: z.number().int() }), "The new balance"), ...errors(400, 401, 404, 415) },
});

const Hostname = z
  .string()
  .trim()
  .toLowerCase()
  .max(253)
  .regex(/^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/, "a fully qualified host name");

const DomainSchema = z.object({ hostname: z.string(), tenant_id: z.string(), verified_at: z.string() }).openapi("Domain");

const attachDomain = createRoute({
  method: "post",
  path: "/v1/platform/domains",
  tags: ["Platform"],
  summary: "Attach a custom hostname the operator has verified",
  security: admin,
  middleware: [requirePlatformAdmin()] as const,
  request: { body: jsonBody(z.object({ tenant: z.string().min(1).max(64).openapi({ description: "Tenant id or slug" }), hostname: Hostname })) },
  responses: {
    201: jsonResponse(DomainSchema, "Attached"),
    ...errors(400, 401, 404, 409),
  },
});

const listDomains = createRoute({
  method: "get",
  path: "/v1/platform/domains",
  tags: ["Platform"],
  summary: "Custom hostnames, optionally of one tenant",
  security: admin,
  middleware: [requirePlatformAdmin()] as const,
  request: { query: z.object({ tenant: z.string().min(1).max(64).optional().openapi({ description: "Tenant id or slug" }) }) },
  responses: { 200: jsonResponse(z.object({ data: z.array(DomainSchema) }), "Hostnames"), ...errors(400, 401, 404) },
});

const detachDomain = createRoute({
  method: "delete",
  path: "/v1/platform/domains/{hostname}",
  tags: ["Platform"],
  summary: "Detach a custom hostname; it stops reaching the tenant",
  security: admin,
  middleware: [requirePlatformAdmin()] as const,
  request: { params: z.object({ hostname: Hostname }) },
  responses: { 204: { description: "Detached" }, ...errors(400, 401, 404) },
});

const PoolSchema = z.object({ bound: z.number(), registered: z.number(), free: z.number(), assigned: z.number() }).openapi("DatabasePool");

const getPool = createRoute({
  method: "get",
  path: "/v1/platform/databases",
  tags: ["Platform"],
  summary: "Tenant database pool: bound, registered, free, assigned",
  security: admin,
  middleware: [requirePlatformAdmin()] as const,
  responses: { 200: jsonResponse(PoolSchema, "Pool counts"), ...errors(401) },
});

const syncDatabases = createRoute({
  method: "post",
  path: "/v1/platform/databases/sync",
  tags: ["Platform"],
  summary: "Register every bound, migrated tenant database in the pool",
  security: admin,
  middleware: [requirePlatformAdmin()] as const,
  responses: {
    200: jsonResponse(z.object({ registered: z.array(z.string()), unmigrated: z.array(z.string()), pool: PoolSchema }), "What was registered"),
    ...errors(401),
  },
});

async function findTenant(c: Context<AppEnv>, ref: string): Promise<TenantRow> {
  const row = await controlDb(c.env)
    .select()
    .from(tenants)
    .where(or(eq(tenants.id, ref), eq(tenants.slug, ref)))
    .get();
  if (!row) throw new ApiError("NOT_FOUND", `No tenant ${ref}`);
  return row;
}

async function changeStatus(c: Context<AppEnv>, id: string, status: "active" | "suspended") {
  const db = controlDb(c.env);
  const tenant = await findTenant(c, id);
  const updated = await db.update(tenants).set({ status, updatedAt: new Date().toISOString() }).where(eq(tenants.id, tenant.id)).returning().get();
  await publishTenant(c.env, tenant.id);
  // Open sockets do not pass the host check again: a suspension closes them itself (4403).
  if (status === "suspended" && updated?.dbBinding) await closeSockets(c.env, { id: tenant.id, dbBinding: updated.dbBinding }, { everyone: true }, CLOSE_CODES.suspended, "tenant suspended");
  const action = status === "suspended" ? "tenant.suspended" : "tenant.reactivated";
  await recordAudit(c, { action, resourceType: "tenant", resourceId: tenant.id }, { tenant: updated!, actor: { type: "platform" } });
  return { ...renderTenant(updated!), db_binding: updated!.dbBinding };
}

/** Platform operator API, on the platform host behind PLATFORM_ADMIN_TOKEN. */
export const platformRoutes = router()
  .openapi(listTenants, async (c) => {
    const { limit, cursor, status } = c.req.valid("query");
    const conditions: SQL[] = [];
    if (status) conditions.push(eq(tenants.status, status));
    if (cursor) conditions.push(lt(tenants.id, decodeCursor(cursor, "ten")));
    const rows = await controlDb(c.env)
      .select()
      .from(tenants)
      .where(and(...conditions))
      .orderBy(desc(tenants.id))
      .limit(limit + 1);
    return c.json(page(rows, limit, (t) => ({ ...renderTenant(t), db_binding: t.dbBinding })), 200);
  })
  .openapi(setStatus("suspend"), async (c) => c.json(await changeStatus(c, c.req.valid("param").id, "suspended"), 200))
  .openapi(setStatus("reactivate"), async (c) => c.json(await changeStatus(c, c.req.valid("param").id, "active"), 200))
  .openapi(changePlan, async (c) => {
    const tenant = await findTenant(c, c.req.valid("param").id);
    const { plan } = c.req.valid("json");
    const db = controlDb(c.env);
    if (!(await db.select({ id: plans.id }).from(plans).where(eq(plans.id, plan)).get())) {
      throw new ApiError("VALIDATION_FAILED", `No plan ${plan}`, { errors: [{ in: "body", field: "plan", message: "no such plan" }] });
    }
    const updated = (await db.update(tenants).set({ planId: plan, updatedAt: new Date().toISOString() }).where(eq(tenants.id, tenant.id)).returning().get())!;
    await publishTenant(c.env, tenant.id);
    await recordAudit(c, { action: "tenant.plan_changed", resourceType: "tenant", resourceId: tenant.id, details: { from: tenant.planId, to: plan } }, { tenant: updated, actor: { type: "platform" } });
    return c.json({ ...renderTenant(updated), db_binding: updated.dbBinding }, 200);
  })
  .openapi(grantCredits, async (c) => {
    const tenant = await findTenant(c, c.req.valid("param").id);
    const body = c.req.valid("json");
    const balance = await moveCredit(controlDb(c.env), { tenantId: tenant.id, amountMicros: body.amount_micros, kind: "grant", reason: body.reason });
    await recordAudit(c, { action: "tenant.credits_granted", resourceType: "tenant", resourceId: tenant.id, details: { amount_micros: body.amount_micros, reason: body.reason } }, { tenant, actor: { type: "platform" } });
    return c.json({ tenant_id: tenant.id, balance_micros: balance }, 201);
  })
  .openapi(attachDomain, async (c) => {
    const body = c.req.valid("json");
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
    return c.json({ hostname: inserted.hostname, tenant_id: tenant.id, verified_at: verifiedAt }, 201);
  })
  .openapi(listDomains, async (c) => {
    const ref = c.req.valid("query").tenant;
    const tenantId = ref ? (await findTenant(c, ref)).id : undefined;
    const rows = await controlDb(c.env)
      .select()
      .from(hostnames)
      .where(tenantId ? eq(hostnames.tenantId, tenantId) : undefined)
      .orderBy(hostnames.hostname);
    return c.json({ data: rows.map((h) => ({ hostname: h.hostname, tenant_id: h.tenantId, verified_at: h.verifiedAt })) }, 200);
  })
  .openapi(detachDomain, async (c) => {
    const { hostname } = c.req.valid("param");
    const deleted = await controlDb(c.env).delete(hostnames).where(eq(hostnames.hostname, hostname)).returning().get();
    if (!deleted) throw new ApiError("NOT_FOUND", `${hostname} is not attached`);
    await publishTenant(c.env, deleted.tenantId, [hostname]);
    const tenant = await findTenant(c, deleted.tenantId);
    await recordAudit(c, { action: "domain.detached", resourceType: "hostname", resourceId: hostname }, { tenant, actor: { type: "platform" } });
    return c.body(null, 204);
  })
  .openapi(getPool, async (c) => c.json(await poolStatus(c.env), 200))
  .openapi(syncDatabases, async (c) => {
    const result = await syncPool(c.env);
    return c.json({ registered: result.registered, unmigrated: result.unmigrated, pool: result.status }, 200);
  });
