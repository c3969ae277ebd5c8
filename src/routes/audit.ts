import { createRoute, z } from "@hono/zod-openapi";
import * as audit from "../audit/log";
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

const Time = z.iso.datetime({ offset: true });
const Filters = z.object({
  action: z.string().max(100).optional().openapi({ description: "e.g. `project.created`" }),
  actor_id: z.string().max(64).optional(),
  resource_id: z.string().max(64).optional(),
  from: Time.optional().openapi({ description: "Entries at or after this time" }),
  to: Time.optional().openapi({ description: "Entries before this time" }),
});

const listAudit = createRoute({
  method: "get",
  path: "/v1/audit-log",
  tags: ["Audit"],
  summary: "Every write in this tenant, newest first",
  ...guarded("audit:read"),
  request: { query: PageQuery.extend(Filters.shape) },
  responses: { 200: jsonResponse(pageOf(AuditEntrySchema), "A page of entries"), ...errors(400, 401, 403) },
});

const exportAudit = createRoute({
  method: "get",
  path: "/v1/audit-log/export",
  tags: ["Audit"],
  summary: "The whole log (or the entries the filters keep), oldest first, streamed as CSV or NDJSON",
  description:
    "Streamed in constant memory whatever its size. CSV follows RFC 4180 (CRLF lines, a header row, quoted cells with doubled quotes) and prefixes a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return with `'`, so a spreadsheet shows it as text rather than running it. NDJSON has one entry per line as `GET /v1/audit-log` shows it.",
  ...guarded("audit:read"),
  request: { query: Filters.extend({ format: z.enum(["csv", "ndjson"]).default("csv") }) },
  responses: {
    200: { description: "The entries", content: { "text/csv": { schema: z.string() }, "application/x-ndjson": { schema: z.string() } } },
    ...errors(400, 401, 403),
  },
});

const Count = z.number().int();
const AuditStats = z
  .object({
    from: z.string(),
    to: z.string(),
    total: Count,
    by_action: z.array(z.object({ action: z.string(), count: Count })).openapi({ description: `The busiest ${audit.MAX_STATS_GROUPS} actions` }),
    by_actor: z.array(z.object({ type: z.string(), id: z.string().nullable(), count: Count })).openapi({ description: `The busiest ${audit.MAX_STATS_GROUPS} actors` }),
    by_day: z.array(z.object({ day: z.string(), count: Count })).openapi({ description: "Days (UTC) with entries, in order" }),
  })
  .openapi("AuditStats");

const auditStats = createRoute({
  method: "get",
  path: "/v1/audit-log/stats",
  tags: ["Audit"],
  summary: `Counts of entries by action, actor and day (the last 30 days unless from/to say otherwise; at most ${audit.MAX_STATS_DAYS} days)`,
  ...guarded("audit:read"),
  request: { query: z.object({ from: Time.optional(), to: Time.optional() }) },
  responses: { 200: jsonResponse(AuditStats, "The counts"), ...errors(400, 401, 403) },
});

/** `GET /v1/audit-log`, its export and its stats. */
export const auditRoutes = router()
  .openapi(listAudit, async (c) => c.json(await audit.listEntries(c, c.req.valid("query")), 200))
  .openapi(exportAudit, async (c) => {
    const { format, ...filter } = c.req.valid("query");
    const day = new Date().toISOString().slice(0, 10);
    return c.body(audit.exportEntries(c, format, filter), 200, {
      "content-type": format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson",
      "content-disposition": `attachment; filename="audit-${c.var.tenant.slug}-${day}.${format === "csv" ? "csv" : "ndjson"}"`,
      "cache-control": "no-store",
    });
  })
  .openapi(auditStats, async (c) => c.json(await audit.entryStats(c, c.req.valid("query")), 200));
