import { and, asc, eq, gt, sql } from "drizzle-orm";
import type { Context } from "hono";
import { documentKey } from "../artifacts/store";
import { recordUpload, storageFull, upload, uploadHeaders } from "../artifacts/uploads";
import type { AppEnv } from "../context";
import { storageUsed } from "../db/artifacts";
import { auditChange } from "../db/audit";
import { insertWhere } from "../db/insert-where";
import { eventAfterChange } from "../db/outbox";
import { findReachable, listReachable } from "../db/owned";
import { knowledgeBases, knowledgeChunks, knowledgeDocuments } from "../db/tenant/schema";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { decodeCursorValue, encodeCursor } from "../lib/pagination";
import { vectorStore } from "../providers/vectors";
import { findKnowledgeBase } from "./bases";
import type { IngestMessage } from "./ingest";
import { type DocumentRow, deleteDocumentRows, documentSummary } from "./store";
import { DOCUMENT_TYPES, documentType, MAX_DOCUMENT_BYTES } from "./text";
import { bucketOf } from "../tenants/residency";

export type { DocumentRow } from "./store";
export type ChunkRow = typeof knowledgeChunks.$inferSelect;

/** The most documents (names) one knowledge base holds. */
export const MAX_DOCUMENTS_PER_BASE = 10_000;

/** At most this many attributes per document; keys and string values within these lengths. */
export const ATTRIBUTES = { max: 16, keyPattern: /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/, maxString: 256 } as const;

export type AttributeValue = string | number | boolean;

const badAttributes = (where: "query" | "header", message: string) =>
  new ApiError("VALIDATION_FAILED", `attributes: ${message}`, { errors: [{ in: where, field: where === "query" ? "attributes" : "tessera-attributes", message }] });

/** A document's attributes, from `?attributes=` or the `Tessera-Attributes` header: a JSON object of up to 16 string, number or boolean values. */
export function parseAttributes(query: string | undefined, header: string | undefined): Record<string, AttributeValue> {
  const where = query !== undefined ? "query" : "header";
  const source = query ?? header;
  if (source === undefined) return {};
  let value: unknown;
  try {
    value = JSON.parse(source);
  } catch {
    throw badAttributes(where, "not valid JSON");
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) throw badAttributes(where, "a JSON object of attribute names to values");
  const entries = Object.entries(value);
  if (entries.length > ATTRIBUTES.max) throw badAttributes(where, `at most ${ATTRIBUTES.max} attributes (got ${entries.length})`);
  for (const [key, v] of entries) {
    if (!ATTRIBUTES.keyPattern.test(key)) throw badAttributes(where, `the name ${JSON.stringify(key)} must be a letter or _ then up to 63 letters, digits, _ . -`);
    if (typeof v === "string" ? v.length > ATTRIBUTES.maxString : typeof v === "number" ? !Number.isFinite(v) : typeof v !== "boolean") {
      throw badAttributes(where, `${key} must be a string of at most ${ATTRIBUTES.maxString} characters, a finite number or a boolean`);
    }
  }
  return value as Record<string, AttributeValue>;
}

const isDocument = (c: Context<AppEnv>, baseId: string) => and(eq(knowledgeDocuments.tenantId, c.var.tenant.id), eq(knowledgeDocuments.knowledgeBaseId, baseId));

/** A document of the base; another base's or another tenant's is a 404. */
export async function findDocument(c: Context<AppEnv>, baseId: string, id: string): Promise<DocumentRow> {
  const doc = await findReachable(c, knowledgeDocuments, id, "document");
  if (doc.knowledgeBaseId !== baseId) throw new ApiError("NOT_FOUND", `No document ${id} in knowledge base ${baseId}`);
  return doc;
}

export async function listDocuments<U>(c: Context<AppEnv>, baseId: string, q: { limit: number; cursor?: string; status?: DocumentRow["status"] }, render: (row: DocumentRow) => U) {
  await findKnowledgeBase(c, baseId);
  return listReachable(
    c,
    knowledgeDocuments,
    { ...q, prefix: "doc", filters: [eq(knowledgeDocuments.knowledgeBaseId, baseId), q.status ? eq(knowledgeDocuments.status, q.status) : undefined] },
    render,
  );
}

/** The chunks of the document's searchable version, in order. */
export async function listChunks<U>(c: Context<AppEnv>, baseId: string, id: string, q: { limit: number; cursor?: string }, render: (row: ChunkRow) => U) {
  const doc = await findDocument(c, baseId, id);
  const after = q.cursor === undefined ? -1 : Number(decodeCursorValue(q.cursor));
  if (!Number.isInteger(after)) throw new ApiError("INVALID_CURSOR", "The cursor is not one this list handed out", { errors: [{ in: "query", field: "cursor", message: "Invalid cursor" }] });
  const rows =
    doc.activeVersion === null
      ? []
      : await c.var.db
          .select()
          .from(knowledgeChunks)
          .where(and(eq(knowledgeChunks.tenantId, doc.tenantId), eq(knowledgeChunks.documentId, doc.id), eq(knowledgeChunks.version, doc.activeVersion), gt(knowledgeChunks.seq, after)))
          .orderBy(asc(knowledgeChunks.seq))
          .limit(q.limit + 1);
  const more = rows.length > q.limit;
  const items = rows.slice(0, q.limit);
  return { data: items.map(render), next_cursor: more ? encodeCursor(String(items.at(-1)!.seq)) : null };
}

/** Answers `415` for a type the platform does not read, naming the ones it does. */
function requireDocumentType(contentType: string | undefined) {
  if (contentType && documentType(contentType)) return;
  const pdf = contentType?.toLowerCase().startsWith("application/pdf");
  throw new ApiError(
    "UNSUPPORTED_MEDIA_TYPE",
    `${pdf ? "PDF is not read yet" : `Content-Type ${contentType ?? "(none)"} is not a document type`}; send one of ${DOCUMENT_TYPES.join(", ")} (with charset=utf-8 by default)`,
    { errors: [{ in: "header", field: "content-type", message: `one of ${DOCUMENT_TYPES.join(", ")}` }] },
  );
}

/**
 * Stores an upload as the named document's next version (version 1 for a new name) and queues its
 * ingestion. The bytes go to R2 under the tenant's prefix; the row is written only within the plan's
 * storage (a re-upload counts its new size in place of the old one). The previous version stays
 * searchable until the new one is ready.
 */
export async function uploadDocument(c: Context<AppEnv>, baseId: string, q: { name: string; attributes?: string }): Promise<DocumentRow> {
  const base = await findKnowledgeBase(c, baseId);
  requireDocumentType(c.req.header("content-type"));
  const attributes = JSON.stringify(parseAttributes(q.attributes, c.req.header("tessera-attributes")));
  const db = c.var.db;
  const tenantId = c.var.tenant.id;
  const existing = await db.select().from(knowledgeDocuments).where(and(isDocument(c, base.id), eq(knowledgeDocuments.name, q.name))).get();
  const { length, contentType } = await uploadHeaders(c, MAX_DOCUMENT_BYTES, "Documents", existing?.size);
  const id = existing?.id ?? newId("doc");
  const content = await upload(c, documentKey(tenantId, id), length, contentType);
  const now = new Date().toISOString();
  const fields = { status: "processing" as const, contentType, size: content.size, sha256: content.sha256, r2Key: content.key, attributes, errorCode: null, error: null, leaseToken: null, leaseUntil: null, updatedAt: now };
  const limit = c.var.plan.storageBytes;
  const baseExists = sql`EXISTS (SELECT 1 FROM ${knowledgeBases} WHERE ${knowledgeBases.tenantId} = ${tenantId} AND ${knowledgeBases.id} = ${base.id})`;
  const write = existing
    ? db
        .update(knowledgeDocuments)
        .set({ ...fields, version: sql`${knowledgeDocuments.version} + 1` })
        // Only over the version this request read: a concurrent re-upload makes this one a 409, not a lost R2 object.
        .where(and(eq(knowledgeDocuments.id, id), eq(knowledgeDocuments.r2Key, existing.r2Key), baseExists, sql`${storageUsed(tenantId)} - ${knowledgeDocuments.size} + ${content.size} <= ${limit}`))
        .returning()
    : insertWhere(
        db,
        knowledgeDocuments,
        { ...fields, id, tenantId, knowledgeBaseId: base.id, projectId: base.projectId, name: q.name, version: 1, activeVersion: null, chunkCount: null, tokenCount: null, createdBy: c.var.principal.userId, createdAt: now },
        and(
          baseExists,
          sql`${storageUsed(tenantId)} + ${content.size} <= ${limit}`,
          sql`(SELECT count(*) FROM ${knowledgeDocuments} WHERE ${knowledgeDocuments.tenantId} = ${tenantId} AND ${knowledgeDocuments.knowledgeBaseId} = ${base.id}) < ${MAX_DOCUMENTS_PER_BASE}`,
        )!,
      )
        .onConflictDoNothing()
        .returning();
  const [rows] = await recordUpload(
    c,
    content.key,
    () => db.batch([write, auditChange(c, { action: "document.uploaded", resourceType: "document", resourceId: id, details: { knowledge_base_id: base.id, name: q.name, size: content.size } })]),
    (r) => r[0].length > 0,
  );
  const doc = rows[0];
  if (!doc) {
    const now = await db.select({ r2Key: knowledgeDocuments.r2Key }).from(knowledgeDocuments).where(and(isDocument(c, base.id), eq(knowledgeDocuments.name, q.name))).get();
    if (now?.r2Key !== existing?.r2Key) throw new ApiError("CONFLICT", `Another upload of ${JSON.stringify(q.name)} landed at the same moment; send this one again to make it the next version`);
    await findKnowledgeBase(c, base.id);
    if (!existing) {
      const [{ n }] = (await db.select({ n: sql<number>`count(*)` }).from(knowledgeDocuments).where(isDocument(c, base.id))) as [{ n: number }];
      if (n >= MAX_DOCUMENTS_PER_BASE) throw new ApiError("PLAN_LIMIT", `A knowledge base holds at most ${MAX_DOCUMENTS_PER_BASE} documents; delete some or use another base`);
    }
    throw storageFull(c);
  }
  // The previous version's chunks hold its text; its original is replaced by this one.
  if (existing) c.executionCtx.waitUntil(bucketOf(c.env, c.var.tenant).delete(existing.r2Key));
  await enqueueIngest(c, doc);
  return doc;
}

/** Queues a version's ingestion. A failed send leaves it `processing`; the sweeper queues it again. */
async function enqueueIngest(c: Context<AppEnv>, doc: DocumentRow) {
  const body: IngestMessage = { v: 1, tenant_id: doc.tenantId, document_id: doc.id, version: doc.version };
  try {
    await c.env.INGEST_QUEUE.send(body, { contentType: "json" });
  } catch (err) {
    c.var.log.warn("document.enqueue_failed", { document_id: doc.id, error: err instanceof Error ? err.message : String(err) });
  }
}

/**
 * Replaces a document's attributes. They live only in the tenant's database (searches filter there),
 * so the change applies to the next search without touching the index.
 */
export async function updateDocumentAttributes(c: Context<AppEnv>, baseId: string, id: string, attributes: Record<string, AttributeValue>): Promise<DocumentRow> {
  const doc = await findDocument(c, baseId, id);
  const db = c.var.db;
  const updated = { ...doc, attributes: JSON.stringify(attributes), updatedAt: new Date().toISOString() };
  const [rows] = await db.batch([
    db
      .update(knowledgeDocuments)
      .set({ attributes: updated.attributes, updatedAt: updated.updatedAt })
      .where(and(isDocument(c, baseId), eq(knowledgeDocuments.id, id)))
      .returning(),
    eventAfterChange(db, { tenantId: doc.tenantId, type: "document.updated", subjectType: "document", subjectId: id, data: { ...documentSummary(updated), attributes } }),
    auditChange(c, { action: "document.updated", resourceType: "document", resourceId: id, details: { fields: ["attributes"] } }),
  ]);
  if (!rows[0]) throw new ApiError("NOT_FOUND", `No document ${id} in knowledge base ${baseId}`);
  return rows[0];
}

/** What deleting a document removed. */
export interface Removed {
  chunks: number;
  vectors: number;
  full_text_rows: number;
  bytes: number;
}

/**
 * Deletes a document: its row, every chunk of every version with its full-text rows (one
 * transaction, with `document.deleted`), then its vectors and its original in R2. An ingestion in
 * flight finds the document gone and removes what it wrote.
 */
export async function deleteDocument(c: Context<AppEnv>, baseId: string, id: string): Promise<Removed> {
  const doc = await findDocument(c, baseId, id);
  const removed = await deleteDocumentRows(c.var.db, doc, [
    auditChange(c, { action: "document.deleted", resourceType: "document", resourceId: id, details: { knowledge_base_id: baseId, name: doc.name } }),
  ]);
  if (!removed) throw new ApiError("NOT_FOUND", `No document ${id} in knowledge base ${baseId}`);
  if (removed.chunkIds.length) await vectorStore(c.env).deleteByIds(c.var.tenant.id, removed.chunkIds);
  await bucketOf(c.env, c.var.tenant).delete(removed.doc.r2Key);
  return { chunks: removed.chunkIds.length, vectors: removed.chunkIds.length, full_text_rows: removed.ftsRows, bytes: removed.doc.size };
}
