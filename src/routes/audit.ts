import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import { listOwned } from "../db/owned";
import { auditLog } from "../db/tenant/schema";
import { PageQuery } from "../lib/pagination";
import { errors, guarded, jsonResponse, pageOf, router } from "./openapi";

const AuditEntrySchema = z
  .object({
    id: z.string(),
    action: z.string(),
    actor: z.object({ type: z.enum(["user", "api_key", "guest", "platform"]), id: z.string().nullable() }),
    resource: z.object({ type: z.string(), id: z.string().nullable() }),
    request_id: z.string(),
    details: z.record(z.string(), z.unknown()).nullable(),
    created_at: z.string(),
  })
  .openapi("AuditEntry");

const listAudit = createRoute({
  method: "get",
  path: "/v1/audit-log",
  tags: ["Audit"],
  summary: "Every write in this tenant, newest first",
  ...guarded("audit:read"),
  request: {
    query: PageQuery.extend({
      action: z.string().max(100).optional().openapi({ description: "e.g. `project.created`" }),
      actor_id: z.string().max(64).optional(),
      resource_id: z.string().max(64).optional(),
    }),
  },
  responses: { 200: jsonResponse(pageOf(AuditEntrySchema), "A page of entries"), ...errors(400, 401, 403) },
});

/** `GET /v1/audit-log`. */
export const auditRoutes = router().openapi(listAudit, async (c) => {
  const q = c.req.valid("query");
  const filters = [
    q.action ? eq(auditLog.action, q.action) : undefined,
    q.actor_id ? eq(auditLog.actorId, q.actor_id) : undefined,
    q.resource_id ? eq(auditLog.resourceId, q.resource_id) : undefined,
  ];
  const entries = await listOwned(c.var.db, auditLog, c.var.tenant.id, { limit: q.limit, cursor: q.cursor, prefix: "aud", filters }, (r) => ({
    id: r.id,
    action: r.action,
    actor: { type: r.actorType, id: r.actorId },
    resource: { type: r.resourceType, id: r.resourceId },
    request_id: r.requestId,
    details: r.details ? (JSON.parse(r.details) as Record<string, unknown>) : null,
    created_at: r.createdAt,
  }));
  return c.json(entries, 200);
});
