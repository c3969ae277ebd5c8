import { insertWhere } from "./insert-where";
import { type SQL, sql } from "drizzle-orm";
import type { StoredContent } from "../artifacts/store";
import { newId } from "../lib/ids";
import { eventAfterChange } from "./outbox";
import type { TenantDb } from "./router";
import { artifacts, artifactVersions, knowledgeDocuments } from "./tenant/schema";

export interface NewArtifact {
  id: string;
  tenantId: string;
  projectId: string;
  kind: (typeof artifacts.$inferSelect)["kind"];
  name: string;
  runId: string | null;
  createdBy: string;
}

/** What a version row says about its bytes. */
export interface VersionContent extends StoredContent {
  contentType: string;
}

const artifactBytes = (tenantId: string) => sql`(SELECT coalesce(sum(${artifactVersions.size}), 0) FROM ${artifactVersions} WHERE ${artifactVersions.tenantId} = ${tenantId})`;
const documentBytes = (tenantId: string) => sql`(SELECT coalesce(sum(${knowledgeDocuments.size}), 0) FROM ${knowledgeDocuments} WHERE ${knowledgeDocuments.tenantId} = ${tenantId})`;

/** A tenant's stored bytes, over every artifact version and knowledge document: as a subquery, for a write's guard. */
export const storageUsed = (tenantId: string) => sql<number>`(${artifactBytes(tenantId)} + ${documentBytes(tenantId)})`;

/** The same sum as a query of its own (one row, `bytes`), for a batch. */
export function storageUsedQuery(db: TenantDb, tenantId: string) {
  return db.select({ bytes: storageUsed(tenantId) }).from(sql`(SELECT 1)`);
}

/**
 * The statements that create an artifact with its version 1, for a batch: the version first, written
 * only if `condition` holds (a storage limit, or the run still being the caller's), then the
 * artifact and its `artifact.created` event, each only if the statement before it wrote.
 */
export function createArtifactStatements(db: TenantDb, a: NewArtifact, content: VersionContent, condition: SQL, at: string) {
  return [
    insertWhere(
      db,
      artifactVersions,
      { tenantId: a.tenantId, artifactId: a.id, version: 1, r2Key: content.key, sha256: content.sha256, size: content.size, contentType: content.contentType, createdBy: a.createdBy, createdAt: at },
      condition,
    ),
    insertWhere(
      db,
      artifacts,
      { id: a.id, tenantId: a.tenantId, projectId: a.projectId, kind: a.kind, name: a.name, latestVersion: 1, runId: a.runId, createdBy: a.createdBy, createdAt: at, updatedAt: at },
      sql`changes() > 0`,
    ),
    eventAfterChange(db, {
      id: newId("evt"),
      tenantId: a.tenantId,
      type: "artifact.created",
      subjectType: "artifact",
      subjectId: a.id,
      data: {
        id: a.id,
        project_id: a.projectId,
        kind: a.kind,
        name: a.name,
        run_id: a.runId,
        version: { version: 1, size: content.size, sha256: content.sha256, content_type: content.contentType },
      },
    }),
  ] as const;
}
