import { and, asc, eq, sql } from "drizzle-orm";
import type { Context } from "hono";
import type { AppEnv } from "../context";
import { auditChange } from "../db/audit";
import { createArtifactStatements, storageUsed } from "../db/artifacts";
import { insertWhere } from "../db/insert-where";
import { eventAfterChange } from "../db/outbox";
import { assertReachable, findReachable, listReachable } from "../db/owned";
import { type ARTIFACT_KINDS, artifacts, artifactVersions } from "../db/tenant/schema";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { requireProject } from "../projects/store";
import { contentKey, MAX_ARTIFACT_BYTES } from "./store";
import { recordUpload, storageFull, upload, uploadHeaders } from "./uploads";

export type ArtifactRow = typeof artifacts.$inferSelect;
export type VersionRow = typeof artifactVersions.$inferSelect;
type Kind = (typeof ARTIFACT_KINDS)[number];

export const findArtifact = (c: Context<AppEnv>, id: string) => findReachable(c, artifacts, id, "artifact");

export const listArtifacts = <U>(c: Context<AppEnv>, q: { limit: number; cursor?: string; project_id?: string; kind?: Kind; run_id?: string }, render: (row: ArtifactRow) => U) =>
  listReachable(
    c,
    artifacts,
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
  await assertReachable(c, artifacts, id, "artifact");
  const tenant = c.var.tenant;
  const row = await c.var.db
    .select()
    .from(artifactVersions)
    .where(and(eq(artifactVersions.tenantId, tenant.id), eq(artifactVersions.artifactId, id), eq(artifactVersions.version, version)))
    .get();
  if (!row) throw new ApiError("NOT_FOUND", `No version ${version} of artifact ${id}`);
  return row;
}

/** Uploads the body as version 1 of a new artifact in `project_id`, within the plan's storage. */
export async function createArtifact(c: Context<AppEnv>, q: { project_id: string; kind: Kind; name: string }): Promise<{ artifact: ArtifactRow; version: VersionRow }> {
  const tenant = c.var.tenant;
  const projectId = await requireProject(c, q.project_id, "query");
  const { length, contentType } = await uploadHeaders(c, MAX_ARTIFACT_BYTES, "Artifact versions");
  const id = newId("art");
  const content = await upload(c, contentKey(tenant.id, id), length, contentType);
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
  if (versionRows.meta.changes === 0) throw storageFull(c);
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
  const { length, contentType } = await uploadHeaders(c, MAX_ARTIFACT_BYTES, "Artifact versions");
  const content = await upload(c, contentKey(tenant.id, id), length, contentType);
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
  if (!bumped[0]) throw storageFull(c);
  return { ...version, version: bumped[0].version };
}
