import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../context";
import { creditsOf } from "../billing/usage";
import { poolStatus, syncPool } from "../db/pool";
import { JURISDICTIONS } from "../db/router";
import { PageQuery } from "../lib/pagination";
import { requirePlatformAdmin } from "../middleware/platform-admin";
import * as ops from "../tenants/operations";
import { residencyOf } from "../tenants/residency";
import { CreditsSchema, errors, jsonBody, jsonResponse, NonBlank, pageOf, renderTenant, router, ShardQuery, TenantSchema } from "./openapi";

/** A tenant as the API shows it (its database binding stays internal). */

const PlatformTenant = TenantSchema.extend({
  db_binding: z.string(),
  shard: z.string().nullable().openapi({ description: "The shard whose Worker binds its database and serves it; null once erased" }),
  residency: z
    .object({
      database: z.object({ binding: z.string(), jurisdiction: z.enum(JURISDICTIONS) }),
      objects: z.object({ bucket: z.string(), jurisdiction: z.enum(JURISDICTIONS) }),
      conversations: z.object({ jurisdiction: z.enum(JURISDICTIONS), placement: z.enum(["default", "cloudflare", "simulated"]) }),
      unplaced: z.array(z.string()),
    })
    .openapi({ description: "Where each part of its data lives; `simulated` where jurisdictions are simulated (locally)" }),
}).openapi("PlatformTenant");
const admin = [{ platformAdmin: [] }];
const TenantRef = z.object({ id: z.string().min(1).max(64) });

const listTenants = createRoute({
  method: "get",
  path: "/v1/platform/tenants",
  tags: ["Platform"],
  summary: "List tenants",
  security: admin,
  middleware: [requirePlatformAdmin()] as const,
  request: { query: PageQuery.extend({ status: z.enum(["active", "suspended", "erasing", "erased"]).optional() }) },
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
    responses: { 200: jsonResponse(PlatformTenant, "The tenant"), ...errors(401, 404, 409) },
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

const PlanSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    requests_per_minute: z.number().int(),
    member_requests_per_minute: z.number().int(),
    monthly_tokens: z.number().int(),
    seats: z.number().int(),
    projects: z.number().int(),
    storage_bytes: z.number().int(),
    tenants: z.number().int().openapi({ description: "Tenants on the plan (erased ones not counted)" }),
  })
  .openapi("Plan");

const listPlans = createRoute({
  method: "get",
  path: "/v1/platform/plans",
  tags: ["Platform"],
  summary: "List the plans with their limits and how many tenants are on each",
  security: admin,
  middleware: [requirePlatformAdmin()] as const,
  responses: { 200: jsonResponse(z.object({ data: z.array(PlanSchema) }), "The plans"), ...errors(401) },
});

const tenantCredits = createRoute({
  method: "get",
  path: "/v1/platform/tenants/{id}/credits",
  tags: ["Platform"],
  summary: "A tenant's prepaid credit: the balance and its ledger, newest first",
  security: admin,
  middleware: [requirePlatformAdmin()] as const,
  request: { params: TenantRef, query: PageQuery },
  responses: { 200: jsonResponse(CreditsSchema, "Balance and ledger"), ...errors(400, 401, 404) },
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

const PoolSchema = z
  .object({
    bound: z.number(),
    registered: z.number(),
    free: z.number(),
    assigned: z.number(),
    behind: z.number().openapi({ description: "Registered databases behind the newest schema this Worker carries" }),
    low_water: z.number().openapi({ description: "POOL_LOW_WATER: the free count below which the pool warns" }),
    low: z.boolean().openapi({ description: "free < low_water: signups log pool.low; provision more" }),
    jurisdictions: z.record(z.enum(JURISDICTIONS), z.object({ free: z.number(), assigned: z.number() })).openapi({ description: "Each jurisdiction's pool: a tenant only takes a database from its own" }),
    shard: z.string().openapi({ description: "The shard that answered: `bound` counts its bindings" }),
    shards: z.record(z.string(), z.object({ free: z.number(), assigned: z.number(), behind: z.number() })).openapi({ description: "Each shard's databases: a signup goes to the shard with the most free in its jurisdiction" }),
  })
  .openapi("DatabasePool");

const getPool = createRoute({
  method: "get",
  path: "/v1/platform/databases",
  tags: ["Platform"],
  summary: "Tenant database pool: bound, registered, free, assigned",
  security: admin,
  middleware: [requirePlatformAdmin()] as const,
  request: { query: z.object({ shard: ShardQuery }) },
  responses: { 200: jsonResponse(PoolSchema, "Pool counts"), ...errors(400, 401) },
});

/** New databases a sync request migrates at most: each takes about five binding calls, an invocation has 10,000. */
const SYNC_PER_REQUEST = 500;

const syncDatabases = createRoute({
  method: "post",
  path: "/v1/platform/databases/sync",
  tags: ["Platform"],
  summary: "Migrate every bound tenant database not yet in the pool to the newest schema, and register it",
  description:
    "Through the bindings, with the migrations bundled with the Worker, a few at a time; at most `limit` (500 unless given) per request, so one request stays inside a Worker invocation's subrequests — repeat while `remaining` is above 0. A database whose migration fails is named with the error and left out of the pool.",
  security: admin,
  middleware: [requirePlatformAdmin()] as const,
  request: {
    query: z.object({
      limit: z.coerce.number().int().min(1).max(1000).default(SYNC_PER_REQUEST).openapi({ description: "At most this many databases (each takes a few binding calls)" }),
      jurisdiction: z.enum(JURISDICTIONS).optional().openapi({ description: "Only databases of this jurisdiction" }),
      shard: ShardQuery,
    }),
  },
  responses: {
    200: jsonResponse(
      z.object({
        registered: z.array(z.string()),
        unmigrated: z.array(z.string()),
        errors: z.record(z.string(), z.string()),
        remaining: z.number().int().openapi({ description: "Bound databases (of the jurisdiction asked) still not in the pool: ask again while above 0" }),
        pool: PoolSchema,
      }),
      "What was registered",
    ),
    ...errors(400, 401),
  },
});

/** A tenant as the operator sees it: with its database binding. */
const platformTenants = async (c: Context<AppEnv>, rows: ops.TenantRow[]) => (await ops.withShards(c, rows)).map((t) => ({ ...renderTenant(t), db_binding: t.dbBinding, shard: t.shard, residency: residencyOf(c.env, t) }));
const platformTenant = async (c: Context<AppEnv>, row: ops.TenantRow) => (await platformTenants(c, [row]))[0]!;

/** Platform operator API, on the platform host behind PLATFORM_ADMIN_TOKEN. */
export const platformRoutes = router()
  .openapi(listTenants, async (c) => {
    const listed = await ops.listTenants(c, c.req.valid("query"));
    return c.json({ data: await platformTenants(c, listed.data), next_cursor: listed.next_cursor }, 200);
  })
  .openapi(setStatus("suspend"), async (c) => c.json(await platformTenant(c, await ops.changeStatus(c, c.req.valid("param").id, "suspended")), 200))
  .openapi(setStatus("reactivate"), async (c) => c.json(await platformTenant(c, await ops.changeStatus(c, c.req.valid("param").id, "active")), 200))
  .openapi(changePlan, async (c) => c.json(await platformTenant(c, await ops.changePlan(c, c.req.valid("param").id, c.req.valid("json").plan)), 200))
  .openapi(listPlans, async (c) => c.json({ data: await ops.listPlans(c) }, 200))
  .openapi(tenantCredits, async (c) => c.json(await creditsOf(c, (await ops.findTenant(c, c.req.valid("param").id)).id, c.req.valid("query")), 200))
  .openapi(grantCredits, async (c) => c.json(await ops.grantCredits(c, c.req.valid("param").id, c.req.valid("json")), 201))
  .openapi(attachDomain, async (c) => c.json(await ops.attachDomain(c, c.req.valid("json")), 201))
  .openapi(listDomains, async (c) => c.json({ data: await ops.listDomains(c, c.req.valid("query").tenant) }, 200))
  .openapi(detachDomain, async (c) => {
    await ops.detachDomain(c, c.req.valid("param").hostname);
    return c.body(null, 204);
  })
  .openapi(getPool, async (c) => c.json(await poolStatus(c.env), 200))
  .openapi(syncDatabases, async (c) => {
    const result = await syncPool(c.env, c.req.valid("query"));
    return c.json({ registered: result.registered, unmigrated: result.unmigrated, errors: result.errors, remaining: result.remaining, pool: result.status }, 200);
  });
