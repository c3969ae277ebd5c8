import { createRoute, z } from "@hono/zod-openapi";
import * as exportsDomain from "../compliance/exports";
import * as settings from "../compliance/settings";
import { EXPORT_SCOPES, EXPORT_STATUSES } from "../db/tenant/schema";
import { publicRoute, requireAuth } from "../middleware/auth";
import { atLeastOneOf, bearer, errors, guarded, jsonBody, jsonResponse, router } from "./openapi";

const ExportSchema = z
  .object({
    id: z.string(),
    scope: z.enum(EXPORT_SCOPES),
    status: z.enum(EXPORT_STATUSES),
    requested_by: z.string(),
    progress: z.object({ files: z.number().int(), current: z.string().nullable(), rows: z.number().int(), bytes: z.number().int() }).nullable(),
    manifest: z.record(z.string(), z.unknown()).nullable().openapi({ description: "The archive's manifest.json, once ready" }),
    bytes: z.number().int().nullable(),
    download: z.object({ url: z.string(), expires_at: z.string() }).nullable().openapi({ description: `A link to the ZIP, valid ${exportsDomain.DOWNLOAD_LINK_SECONDS / 60} minutes: every GET makes a fresh one` }),
    error: z.string().nullable(),
    created_at: z.string(),
    completed_at: z.string().nullable(),
    expires_at: z.string().openapi({ description: `The export and its archive are deleted then (${exportsDomain.EXPORT_TTL_DAYS} days after it was asked for)` }),
  })
  .openapi("Export");

type ExportRow = exportsDomain.ExportRow;
const render = (r: ExportRow, download: { url: string; expiresAt: string } | null = null): z.infer<typeof ExportSchema> => ({
  id: r.id,
  scope: r.scope,
  status: r.status,
  requested_by: r.requestedBy,
  progress: r.progress ? JSON.parse(r.progress) : null,
  manifest: r.manifest ? JSON.parse(r.manifest) : null,
  bytes: r.bytes,
  download: download && { url: download.url, expires_at: download.expiresAt },
  error: r.error,
  created_at: r.createdAt,
  completed_at: r.completedAt,
  expires_at: r.expiresAt,
});

const ExportRef = z.object({ id: z.string().max(64) });
const tags = ["Compliance"];

const requestExport = createRoute({
  method: "post",
  path: "/v1/exports",
  tags,
  summary: "Export your data in this tenant (`me`), or the whole tenant's (`tenant`, owners and admins)",
  description:
    "Queued (202): a job writes one ZIP with an NDJSON file per kind (profile or members, every table of the tenant's database — a `me` export only the rows that name you —, every conversation's messages), the stored bytes of artifacts and knowledge documents, and a `manifest.json` with each file's row count and SHA-256. Asking again while yours is queued or running answers that one.",
  security: bearer,
  middleware: [requireAuth()] as const,
  request: { body: jsonBody(z.object({ scope: z.enum(EXPORT_SCOPES) })) },
  responses: { 202: jsonResponse(ExportSchema, "The export job"), ...errors(400, 401, 403, 409, 415) },
});

const listExports = createRoute({
  method: "get",
  path: "/v1/exports",
  tags,
  summary: "Your exports (and the tenant's, with compliance:manage), newest first",
  security: bearer,
  middleware: [requireAuth()] as const,
  request: { query: z.object({ limit: z.coerce.number().int().min(1).max(exportsDomain.MAX_EXPORTS).default(exportsDomain.MAX_EXPORTS) }) },
  responses: { 200: jsonResponse(z.object({ data: z.array(ExportSchema) }), "Exports"), ...errors(400, 401) },
});

const getExport = createRoute({
  method: "get",
  path: "/v1/exports/{id}",
  tags,
  summary: "An export's status and progress; when ready, its manifest and a fresh download link",
  security: bearer,
  middleware: [requireAuth()] as const,
  request: { params: ExportRef },
  responses: { 200: jsonResponse(ExportSchema, "The export"), ...errors(401, 404) },
});

const deleteExport = createRoute({
  method: "delete",
  path: "/v1/exports/{id}",
  tags,
  summary: "Delete an export and its archive now",
  security: bearer,
  middleware: [requireAuth()] as const,
  request: { params: ExportRef },
  responses: { 204: { description: "Deleted" }, ...errors(401, 404) },
});

const archive = createRoute({
  method: "get",
  path: "/v1/exports/{id}/archive",
  tags,
  summary: "The export's ZIP, by the signed link GET /v1/exports/{id} gives (no other credential)",
  middleware: [publicRoute()] as const,
  request: { params: ExportRef, query: z.object({ expires: z.string().regex(/^\d{1,12}$/, "seconds since the epoch"), signature: z.string().regex(/^[0-9a-f]{64}$/, "64 hex digits") }) },
  responses: { 200: { description: "The archive", content: { "application/zip": { schema: z.string().openapi({ format: "binary" }) } } }, ...errors(400, 401, 404) },
});

const Days = (min: number, max: number) => z.number().int().min(min).max(max);
const SettingsSchema = z
  .object({
    run_retention_days: Days(1, 3650).nullable().openapi({ description: "Finished runs, with the artifacts they produced, are deleted after this many days; null keeps them" }),
    audit_retention_days: Days(30, 3650).openapi({ description: "Audit entries are deleted after this many days (400 unless set)" }),
    webhook_retention_days: Days(1, 365).openapi({ description: "Webhook delivery attempts are deleted after this many days (30 unless set)" }),
    uploads_on_erasure: z.enum(["keep", "erase"]).openapi({ description: "What an erased member's uploads (artifacts, documents) become: the tenant's content, or erased with them" }),
    updated_by: z.string().nullable(),
    updated_at: z.string().nullable(),
  })
  .openapi("ComplianceSettings");

const renderSettings = (s: settings.ComplianceSettings): z.infer<typeof SettingsSchema> => ({
  run_retention_days: s.runRetentionDays,
  audit_retention_days: s.auditRetentionDays,
  webhook_retention_days: s.webhookRetentionDays,
  uploads_on_erasure: s.uploadsOnErasure,
  updated_by: s.updatedBy,
  updated_at: s.updatedAt,
});

const getSettings = createRoute({
  method: "get",
  path: "/v1/settings/compliance",
  tags,
  summary: "The tenant's retention and erasure policy",
  ...guarded("compliance:manage"),
  responses: { 200: jsonResponse(SettingsSchema, "The policy"), ...errors(401, 403) },
});

const Changeable = SettingsSchema.pick({ run_retention_days: true, audit_retention_days: true, webhook_retention_days: true, uploads_on_erasure: true });
const Change = Changeable.partial()
  .strict()
  .refine((b) => Object.keys(b).length > 0, "give at least one field")
  .openapi("ComplianceSettingsChange", atLeastOneOf(Changeable.shape));
const changeSettings = createRoute({
  method: "patch",
  path: "/v1/settings/compliance",
  tags,
  summary: "Change the tenant's retention and erasure policy (enforced by the scheduled sweep)",
  ...guarded("compliance:manage"),
  request: { body: jsonBody(Change) },
  responses: { 200: jsonResponse(SettingsSchema, "The policy"), ...errors(400, 401, 403, 415) },
});

/** Data exports and the compliance policy. */
export const exportRoutes = router()
  .openapi(requestExport, async (c) => c.json(render(await exportsDomain.requestExport(c, c.req.valid("json").scope)), 202))
  .openapi(listExports, async (c) => c.json({ data: (await exportsDomain.listExports(c, c.req.valid("query").limit)).map((r) => render(r)) }, 200))
  .openapi(getExport, async (c) => {
    const row = await exportsDomain.findExport(c, c.req.valid("param").id);
    return c.json(render(row, row.status === "ready" ? await exportsDomain.downloadLink(c, row) : null), 200);
  })
  .openapi(deleteExport, async (c) => {
    await exportsDomain.deleteExport(c, c.req.valid("param").id);
    return c.body(null, 204);
  })
  .openapi(archive, async (c) => {
    const q = c.req.valid("query");
    return exportsDomain.openArchive(c, c.req.valid("param").id, { expires: Number(q.expires), signature: q.signature }) as never;
  })
  .openapi(getSettings, async (c) => c.json(renderSettings(await settings.settingsOf(c.var.db, c.var.tenant.id)), 200))
  .openapi(changeSettings, async (c) => c.json(renderSettings(await settings.changeSettings(c, c.req.valid("json"))), 200));
