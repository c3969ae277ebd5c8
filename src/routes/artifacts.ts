import { createRoute, z } from "@hono/zod-openapi";
import { and, asc, desc, eq, lt, sql } from "drizzle-orm";
import type { Context } from "hono";
import { ClientAborted, ContentLengthMismatch, contentKey, etagListMatches, MAX_ARTIFACT_BYTES, parseRange, putContent, type StoredContent } from "../artifacts/store";
import type { AppEnv } from "../context";
import { actorOf, auditAfterChange } from "../db/audit";
import { createArtifactStatements, storageUsed, storageUsedQuery } from "../db/artifacts";
import { eventAfterChange } from "../db/outbox";
import { tenantDb } from "../db/router";
import { ARTIFACT_KINDS, artifacts, artifactVersions } from "../db/tenant/schema";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { decodeCursor, page, PageQuery } from "../lib/pagination";
import { errors, guarded, jsonResponse, NonBlank, pageOf, router } from "./openapi";
import { requireProject } from "../projects/store";

const VersionSchema = z
  .object({
    version: z.number().int(),
    size: z.number().int(),
    sha256: z.string(),
    content_type: z.string(),
    created_by: z.string(),
    created_at: z.string(),
  })
  .openapi("ArtifactVersion");

const ArtifactSchema = z
  .object({
    id: z.string(),
    project_id: z.string(),
    kind: z.enum(ARTIFACT_KINDS),
    name: z.string(),
    latest_version: z.number().int(),
    run_id: z.string().nullable(),
    created_by: z.string(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("Artifact");

const IdParam = z.object({ id: z.string().min(1).max(64) });
const VersionParam = IdParam.extend({ version: z.coerce.number().int().min(1) });

/** The raw bytes of an upload: any content type, up to 25 MiB, with a Content-Length. */
const uploadBody = {
  required: true,
  description: `The content itself (not JSON-wrapped), at most ${MAX_ARTIFACT_BYTES} bytes, with Content-Length and its Content-Type.`,
  content: { "*/*": { schema: z.string().openapi({ format: "binary" }) } },
};

const createArtifact = createRoute({
  method: "post",
  path: "/v1/artifacts",
  tags: ["Artifacts"],
  summary: "Upload an artifact's first version (streamed to storage)",
  ...guarded("artifacts:write"),
  request: {
    query: z.object({
      project_id: z.string().min(1).max(64),
      kind: z.enum(ARTIFACT_KINDS),
      name: NonBlank(200),
    }),
    body: uploadBody,
  },
  responses: {
    201: jsonResponse(ArtifactSchema.extend({ version: VersionSchema }), "The artifact and its version 1"),
    ...errors(400, 401, 403, 404, 411, 413),
  },
});

const addVersion = createRoute({
  method: "post",
  path: "/v1/artifacts/{id}/versions",
  tags: ["Artifacts"],
  summary: "Upload the next version of an artifact",
  ...guarded("artifacts:write"),
  request: { params: IdParam, body: uploadBody },
  responses: { 201: jsonResponse(VersionSchema, "The new version"), ...errors(400, 401, 403, 404, 411, 413) },
});

const listArtifacts = createRoute({
  method: "get",
  path: "/v1/artifacts",
  tags: ["Artifacts"],
  summary: "List artifacts, newest first",
  ...guarded("artifacts:read"),
  request: {
    query: PageQuery.extend({
      project_id: z.string().min(1).max(64).optional(),
      kind: z.enum(ARTIFACT_KINDS).optional(),
      run_id: z.string().min(1).max(64).optional(),
    }),
  },
  responses: { 200: jsonResponse(pageOf(ArtifactSchema), "A page of artifacts"), ...errors(400, 401, 403) },
});

const getArtifact = createRoute({
  method: "get",
  path: "/v1/artifacts/{id}",
  tags: ["Artifacts"],
  summary: "Get an artifact with its versions",
  ...guarded("artifacts:read"),
  request: { params: IdParam },
  responses: { 200: jsonResponse(ArtifactSchema.extend({ versions: z.array(VersionSchema) }), "The artifact"), ...errors(401, 403, 404) },
});

const getVersion = createRoute({
  method: "get",
  path: "/v1/artifacts/{id}/versions/{version}",
  tags: ["Artifacts"],
  summary: "Get one version's metadata",
  ...guarded("artifacts:read"),
  request: { params: VersionParam },
  responses: { 200: jsonResponse(VersionSchema, "The version"), ...errors(400, 401, 403, 404) },
});

const getContent = createRoute({
  method: "get",
  path: "/v1/artifacts/{id}/versions/{version}/content",
  tags: ["Artifacts"],
  summary: "Download a version's bytes",
  description:
    "Streams from storage. The ETag is the content's SHA-256; If-None-Match answers 304, If-Match 412 when it differs, and a single `Range: bytes=` answers 206 (If-Range honoured).",
  ...guarded("artifacts:read"),
  request: { params: VersionParam },
  responses: {
    200: { description: "The content", content: { "*/*": { schema: z.string().openapi({ format: "binary" }) } } },
    206: { description: "The requested range", content: { "*/*": { schema: z.string().openapi({ format: "binary" }) } } },
    304: { description: "Not modified" },
    ...errors(400, 401, 403, 404, 412, 416),
  },
});

type ArtifactRow = typeof artifacts.$inferSelect;
type VersionRow = typeof artifactVersions.$inferSelect;

const render = (a: ArtifactRow): z.infer<typeof ArtifactSchema> => ({
  id: a.id,
  project_id: a.projectId,
  kind: a.kind,
  name: a.name,
  latest_version: a.latestVersion,
  run_id: a.runId,
  created_by: a.createdBy,
  created_at: a.createdAt,
  updated_at: a.updatedAt,
});

const renderVersion = (v: VersionRow): z.infer<typeof VersionSchema> => ({
  version: v.version,
  size: v.size,
  sha256: v.sha256,
  content_type: v.contentType,
  created_by: v.createdBy,
  created_at: v.createdAt,
});

async function findArtifact(c: Context<AppEnv>, id: string): Promise<ArtifactRow> {
  const tenant = c.var.tenant;
  const row = await c.var.db
    .select()
    .from(artifacts)
    .where(and(eq(artifacts.id, id), eq(artifacts.tenantId, tenant.id)))
    .get();
  if (!row) throw new ApiError("NOT_FOUND", `No artifact ${id}`);
  return row;
}

async function findVersion(c: Context<AppEnv>, id: string, version: number): Promise<VersionRow> {
  const tenant = c.var.tenant;
  const row = await c.var.db
    .select()
    .from(artifactVersions)
    .where(and(eq(artifactVersions.tenantId, tenant.id), eq(artifactVersions.artifactId, id), eq(artifactVersions.version, version)))
    .get();
  if (!row) throw new ApiError("NOT_FOUND", `No version ${version} of artifact ${id}`);
  return row;
}

const CONTENT_TYPE = /^[\w!#$&^.+-]+\/[\w!#$&^.+-]+(\s*;.*)?$/;

/**
 * Checks an upload's headers before a byte is read: a Content-Length within the limit and within
 * what the plan's storage has left, and a sane Content-Type.
 */
async function uploadHeaders(c: Context<AppEnv>): Promise<{ length: number; contentType: string }> {
  const declared = c.req.header("content-length");
  if (declared === undefined || !/^\d+$/.test(declared)) {
    throw new ApiError("LENGTH_REQUIRED", "Send the content with a Content-Length header (chunked uploads are not accepted)", {
      errors: [{ in: "header", field: "content-length", message: "required" }],
    });
  }
  const length = Number(declared);
  if (length > MAX_ARTIFACT_BYTES) throw new ApiError("PAYLOAD_TOO_LARGE", `Artifact versions are limited to ${MAX_ARTIFACT_BYTES} bytes; this one is ${length}`);
  const contentType = (c.req.header("content-type") ?? "application/octet-stream").trim();
  if (!CONTENT_TYPE.test(contentType) || contentType.length > 200) {
    throw new ApiError("VALIDATION_FAILED", "Content-Type is not a media type", { errors: [{ in: "header", field: "content-type", message: "a media type such as text/markdown" }] });
  }
  await checkStorage(c, length);
  return { length, contentType };
}

async function checkStorage(c: Context<AppEnv>, adding: number) {
  const plan = c.var.plan;
  const [row] = await storageUsedQuery(c.var.db, c.var.tenant.id);
  if ((row?.bytes ?? 0) + adding > plan.storageBytes) throw storageFull(plan.name, plan.storageBytes);
}

const storageFull = (plan: string, bytes: number) => new ApiError("PLAN_LIMIT", `The ${plan} plan stores ${bytes} bytes of artifacts; this upload would pass it`);

/** Streams the request body to a fresh R2 key; a body that is not what its headers said is a 400, and leaves nothing behind. */
async function upload(c: Context<AppEnv>, artifactId: string, length: number, contentType: string): Promise<StoredContent> {
  const key = contentKey(c.var.tenant.id, artifactId);
  try {
    return await putContent(c.env.ARTIFACTS, key, c.req.raw.body, length, contentType);
  } catch (err) {
    await c.env.ARTIFACTS.delete(key).catch(() => {});
    if (err instanceof ClientAborted) {
      // The client's own doing: no stack, no error level; answered in case anyone still listens.
      c.var.log.info("artifact.upload_aborted", { artifact_id: artifactId, reason: err.message });
      throw new ApiError("REQUEST_ABORTED", "The upload stopped before its Content-Length was reached; nothing was stored");
    }
    if (!(err instanceof ContentLengthMismatch)) throw err;
    // A body shorter or longer than declared is also the client's doing (often a disconnect): no stack.
    c.var.log.info("artifact.upload_incomplete", { artifact_id: artifactId, reason: err.message });
    throw new ApiError("VALIDATION_FAILED", "The body did not match its Content-Length", { errors: [{ in: "header", field: "content-length", message: err.message }] });
  }
}

/** Runs the batch that records an upload; if it fails or records nothing, the uploaded bytes are deleted before answering. */
async function recordUpload<T>(c: Context<AppEnv>, key: string, write: () => Promise<T>, wrote: (result: T) => boolean): Promise<T> {
  let result: T;
  try {
    result = await write();
  } catch (err) {
    await c.env.ARTIFACTS.delete(key);
    throw err;
  }
  if (!wrote(result)) await c.env.ARTIFACTS.delete(key);
  return result;
}

/** Answers the methods a path does not take: versions (and artifacts) are never changed or deleted through the API. */
const only = (allow: string) => (c: Context<AppEnv>) => {
  throw new ApiError("METHOD_NOT_ALLOWED", `${c.req.method} is not allowed here: artifact versions are immutable; upload a new version instead`, { headers: { allow } });
};

/** Artifacts: immutable versions in R2 under the tenant's prefix, metadata in the tenant's D1. */
export const artifactRoutes = router()
  .openapi(createArtifact, async (c) => {
    const q = c.req.valid("query");
    const tenant = c.var.tenant;
    const projectId = await requireProject(c, q.project_id, "query");
    const { length, contentType } = await uploadHeaders(c);
    const id = newId("art");
    const content = await upload(c, id, length, contentType);
    const db = c.var.db;
    const at = new Date().toISOString();
    const userId = c.var.principal.userId;
    const artifact = { id, tenantId: tenant.id, projectId, kind: q.kind, name: q.name, runId: null, createdBy: userId };
    const [versionRows] = await recordUpload(
      c,
      content.key,
      () =>
        db.batch([
          ...createArtifactStatements(db, artifact, { ...content, contentType }, sql`${storageUsed(tenant.id)} + ${content.size} <= ${c.var.plan.storageBytes}`, at),
          auditAfterChange(db, tenant.id, actorOf(c.var.principal), c.var.requestId, { action: "artifact.created", resourceType: "artifact", resourceId: id, details: { size: content.size } }),
        ]),
      (r) => r[0].meta.changes > 0,
    );
    if (versionRows.meta.changes === 0) throw storageFull(c.var.plan.name, c.var.plan.storageBytes);
    const version: VersionRow = { tenantId: tenant.id, artifactId: id, version: 1, r2Key: content.key, sha256: content.sha256, size: content.size, contentType, createdBy: userId, createdAt: at };
    return c.json({ ...render({ ...artifact, latestVersion: 1, createdAt: at, updatedAt: at }), version: renderVersion(version) }, 201);
  })
  .openapi(addVersion, async (c) => {
    const { id } = c.req.valid("param");
    const tenant = c.var.tenant;
    const artifact = await findArtifact(c, id);
    const { length, contentType } = await uploadHeaders(c);
    const content = await upload(c, id, length, contentType);
    const db = c.var.db;
    const at = new Date().toISOString();
    const userId = c.var.principal.userId;
    // Number and row in one transaction: concurrent uploads get consecutive versions, never the same one.
    const [bumped] = await recordUpload(
      c,
      content.key,
      () =>
        db.batch([
          db
            .update(artifacts)
            .set({ latestVersion: sql`${artifacts.latestVersion} + 1`, updatedAt: at })
            .where(and(eq(artifacts.id, id), eq(artifacts.tenantId, tenant.id), sql`${storageUsed(tenant.id)} + ${content.size} <= ${c.var.plan.storageBytes}`))
            .returning({ version: artifacts.latestVersion }),
          db
            .insert(artifactVersions)
            .select(
              sql`SELECT ${tenant.id}, ${id}, a.latest_version, ${content.key}, ${content.sha256}, ${content.size}, ${contentType}, ${userId}, ${at}
                  FROM ${artifacts} a WHERE a.id = ${id} AND a.tenant_id = ${tenant.id} AND changes() > 0`,
            ),
          eventAfterChange(db, {
            tenantId: tenant.id,
            type: "artifact.version_created",
            subjectType: "artifact",
            subjectId: id,
            data: { id, project_id: artifact.projectId, kind: artifact.kind, name: artifact.name, size: content.size, sha256: content.sha256, content_type: contentType },
          }),
          auditAfterChange(db, tenant.id, actorOf(c.var.principal), c.var.requestId, { action: "artifact.version_created", resourceType: "artifact", resourceId: id, details: { size: content.size } }),
        ]),
      (r) => r[0].length > 0,
    );
    if (!bumped[0]) throw storageFull(c.var.plan.name, c.var.plan.storageBytes);
    const version: VersionRow = { tenantId: tenant.id, artifactId: id, version: bumped[0].version, r2Key: content.key, sha256: content.sha256, size: content.size, contentType, createdBy: userId, createdAt: at };
    return c.json(renderVersion(version), 201);
  })
  .openapi(listArtifacts, async (c) => {
    const q = c.req.valid("query");
    const tenant = c.var.tenant;
    const rows = await c.var.db
      .select()
      .from(artifacts)
      .where(
        and(
          eq(artifacts.tenantId, tenant.id),
          q.project_id ? eq(artifacts.projectId, q.project_id) : undefined,
          q.kind ? eq(artifacts.kind, q.kind) : undefined,
          q.run_id ? eq(artifacts.runId, q.run_id) : undefined,
          q.cursor ? lt(artifacts.id, decodeCursor(q.cursor, "art")) : undefined,
        ),
      )
      .orderBy(desc(artifacts.id))
      .limit(q.limit + 1);
    return c.json(page(rows, q.limit, render), 200);
  })
  .openapi(getArtifact, async (c) => {
    const { id } = c.req.valid("param");
    const tenant = c.var.tenant;
    const artifact = await findArtifact(c, id);
    const versions = await c.var.db
      .select()
      .from(artifactVersions)
      .where(and(eq(artifactVersions.tenantId, tenant.id), eq(artifactVersions.artifactId, id)))
      .orderBy(asc(artifactVersions.version));
    return c.json({ ...render(artifact), versions: versions.map(renderVersion) }, 200);
  })
  .openapi(getVersion, async (c) => {
    const { id, version } = c.req.valid("param");
    return c.json(renderVersion(await findVersion(c, id, version)), 200);
  })
  .openapi(getContent, async (c) => {
    const { id, version } = c.req.valid("param");
    const v = await findVersion(c, id, version);
    const etag = `"${v.sha256}"`;
    const headers = new Headers({
      etag,
      "accept-ranges": "bytes",
      // A version never changes, so a client may keep it as long as it likes (but no shared cache: it is private).
      "cache-control": "private, max-age=31536000, immutable",
      "last-modified": new Date(v.createdAt).toUTCString(),
      // User content served from the API's origin must never run as a page there.
      "content-security-policy": "sandbox",
      "x-content-type-options": "nosniff",
      "x-request-id": c.var.requestId,
    });
    const ifMatch = c.req.header("if-match");
    if (ifMatch && !etagListMatches(ifMatch, etag)) throw new ApiError("PRECONDITION_FAILED", `If-Match does not name this version's ETag ${etag}`);
    if (etagListMatches(c.req.header("if-none-match"), etag)) return new Response(null, { status: 304, headers });
    const ifRange = c.req.header("if-range");
    const range = ifRange && ifRange.trim() !== etag ? null : parseRange(c.req.header("range"), v.size);
    if (range === "unsatisfiable") {
      throw new ApiError("RANGE_NOT_SATISFIABLE", `The content is ${v.size} bytes`, { headers: { "content-range": `bytes */${v.size}` } });
    }
    const object = await c.env.ARTIFACTS.get(v.r2Key, range ? { range } : undefined);
    if (!object) throw new Error(`artifact ${id} version ${version}: object ${v.r2Key} is missing from R2`);
    headers.set("content-type", v.contentType);
    if (!range) {
      headers.set("content-length", String(v.size));
      return new Response(object.body, { status: 200, headers });
    }
    headers.set("content-length", String(range.length));
    headers.set("content-range", `bytes ${range.offset}-${range.offset + range.length - 1}/${v.size}`);
    return new Response(object.body, { status: 206, headers });
  });

// Registered after the routes above, so they only see the methods those do not take.
artifactRoutes.all("/v1/artifacts/:id/versions/:version/content", only("GET, HEAD"));
artifactRoutes.all("/v1/artifacts/:id/versions/:version", only("GET, HEAD"));
artifactRoutes.all("/v1/artifacts/:id/versions", only("POST"));
artifactRoutes.all("/v1/artifacts/:id", only("GET, HEAD"));
