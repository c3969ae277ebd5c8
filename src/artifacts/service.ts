import { and, asc, eq, sql } from "drizzle-orm";
import type { Context } from "hono";
import type { AppEnv } from "../context";
import { auditChange } from "../db/audit";
import { createArtifactStatements, storageUsed, storageUsedQuery } from "../db/artifacts";
import { insertWhere } from "../db/insert-where";
import { eventAfterChange } from "../db/outbox";
import { findOwned, listOwned } from "../db/owned";
import { type ARTIFACT_KINDS, artifacts, artifactVersions } from "../db/tenant/schema";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { requireProject } from "../projects/store";
import { ClientAborted, ContentLengthMismatch, contentKey, MAX_ARTIFACT_BYTES, putContent, type StoredContent } from "./store";

export type ArtifactRow = typeof artifacts.$inferSelect;
export type VersionRow = typeof artifactVersions.$inferSelect;
type Kind = (typeof ARTIFACT_KINDS)[number];

export const findArtifact = (c: Context<AppEnv>, id: string) => findOwned(c.var.db, artifacts, c.var.tenant.id, id, "artifact");

export const listArtifacts = <U>(c: Context<AppEnv>, q: { limit: number; cursor?: string; project_id?: string; kind?: Kind; run_id?: string }, render: (row: ArtifactRow) => U) =>
  listOwned(
    c.var.db,
    artifacts,
    c.var.tenant.id,
    {
      ...q,
      prefix: "art",
      filters: [q.project_id ? eq(artifacts.projectId, q.project_id) : undefined, q.kind ? eq(artifacts.kind, q.kind) : undefined, q.run_id ? eq(artifacts.runId, q.run_id) : undefined],
    },
    render,
  );

/** An artifact with its versions, oldest first. */
export async function artifactWithVersions(c: Context<AppEnv>, id: string): Promise<{ artifact: ArtifactRow; versions: VersionRow[] }> {
  const artifact = await findArtifact(c, id);
  const versions = await c.var.db
    .select()
    .from(artifactVersions)
    .where(and(eq(artifactVersions.tenantId, c.var.tenant.id), eq(artifactVersions.artifactId, id)))
    .orderBy(asc(artifactVersions.version));
  return { artifact, versions };
}

export async function findVersion(c: Context<AppEnv>, id: string, version: number): Promise<VersionRow> {
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

/** Uploads the body as version 1 of a new artifact in `project_id`, within the plan's storage. */
export async function createArtifact(c: Context<AppEnv>, q: { project_id: string; kind: Kind; name: string }): Promise<{ artifact: ArtifactRow; version: VersionRow }> {
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
        auditChange(c, { action: "artifact.created", resourceType: "artifact", resourceId: id, details: { size: content.size } }),
      ]),
    (r) => r[0].meta.changes > 0,
  );
  if (versionRows.meta.changes === 0) throw storageFull(c.var.plan.name, c.var.plan.storageBytes);
  const version: VersionRow = { tenantId: tenant.id, artifactId: id, version: 1, r2Key: content.key, sha256: content.sha256, size: content.size, contentType, createdBy: userId, createdAt: at };
  return { artifact: { ...artifact, latestVersion: 1, createdAt: at, updatedAt: at }, version };
}

/**
 * Uploads the body as the artifact's next version, within the plan's storage: the number and the
 * row in one transaction, so concurrent uploads get consecutive versions, never the same one.
 */
export async function addVersion(c: Context<AppEnv>, id: string): Promise<VersionRow> {
  const tenant = c.var.tenant;
  const artifact = await findArtifact(c, id);
  const { length, contentType } = await uploadHeaders(c);
  const content = await upload(c, id, length, contentType);
  const db = c.var.db;
  const at = new Date().toISOString();
  const userId = c.var.principal.userId;
  const version = { tenantId: tenant.id, artifactId: id, version: sql`a.latest_version`, r2Key: content.key, sha256: content.sha256, size: content.size, contentType, createdBy: userId, createdAt: at };
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
        insertWhere(db, artifactVersions, version, sql`a.id = ${id} AND a.tenant_id = ${tenant.id} AND changes() > 0`, sql`${artifacts} a`),
        eventAfterChange(db, {
          tenantId: tenant.id,
          type: "artifact.version_created",
          subjectType: "artifact",
          subjectId: id,
          data: { id, project_id: artifact.projectId, kind: artifact.kind, name: artifact.name, size: content.size, sha256: content.sha256, content_type: contentType },
        }),
        auditChange(c, { action: "artifact.version_created", resourceType: "artifact", resourceId: id, details: { size: content.size } }),
      ]),
    (r) => r[0].length > 0,
  );
  if (!bumped[0]) throw storageFull(c.var.plan.name, c.var.plan.storageBytes);
  return { ...version, version: bumped[0].version };
}
