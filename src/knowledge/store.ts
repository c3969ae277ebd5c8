import { and, eq, type SQL, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { type ModelCall, release, reserve, settle } from "../billing/metering";
import { insertWhere } from "../db/insert-where";
import { eventAfterChange, type EventType } from "../db/outbox";
import type { TenantDb } from "../db/router";
import { knowledgeChunks, knowledgeDocuments } from "../db/tenant/schema";
import { knowledgeChunksFts } from "./fts";

/**
 * The SQL of a document's ingestion, as transitions of its row like a run's: an attempt claims the
 * latest version with a lease, and every later write is conditioned on still holding it, so a
 * duplicate delivery, a re-upload or a delete in the meantime makes the attempt's writes no-ops.
 */

export type DocumentRow = typeof knowledgeDocuments.$inferSelect;

/** How long an attempt holds a document: past a queue consumer's longest life, so a lease runs out only when its holder is gone. */
export const INGEST_LEASE_MS = 16 * 60 * 1000;

/** A chunk's id, which is also its vector's: the same on every attempt, so a retried upsert replaces rather than adds. */
export const chunkId = (documentId: string, version: number, seq: number) => `chk_${documentId.slice(4)}_${version}_${seq}`;

/** The embedding tokens of one version's ingestion are metered under this reference. */
export const ingestCall = (doc: { tenantId: string; id: string; version: number }) => ({ tenantId: doc.tenantId, reference: `${doc.id}.v${doc.version}` });

/** What events and webhooks say about a document. */
export function documentSummary(d: DocumentRow) {
  return {
    id: d.id,
    knowledge_base_id: d.knowledgeBaseId,
    project_id: d.projectId,
    name: d.name,
    version: d.version,
    active_version: d.activeVersion,
    status: d.status,
    size: d.size,
    chunk_count: d.chunkCount,
    token_count: d.tokenCount,
    error: d.errorCode ? { code: d.errorCode, message: d.error } : null,
  };
}

const isDoc = (d: { tenantId: string; id: string }) => sql`${knowledgeDocuments.tenantId} = ${d.tenantId} AND ${knowledgeDocuments.id} = ${d.id}`;

/** `condition` on the document's row, for statements on other tables. */
const docWhere = (d: { tenantId: string; id: string }, condition: SQL) => sql`EXISTS (SELECT 1 FROM ${knowledgeDocuments} WHERE ${isDoc(d)} AND ${condition})`;

/** The version `v` is the latest, still processing, and this attempt holds it. */
const heldBy = (version: number, leaseToken: string) =>
  sql`${knowledgeDocuments.status} = 'processing' AND ${knowledgeDocuments.version} = ${version} AND ${knowledgeDocuments.leaseToken} = ${leaseToken}`;

/** The version `v` is the latest, still processing, and no live attempt holds it. */
export const unheld = (version: number, now = Date.now()) =>
  sql`${knowledgeDocuments.status} = 'processing' AND ${knowledgeDocuments.version} = ${version} AND (${knowledgeDocuments.leaseUntil} IS NULL OR ${knowledgeDocuments.leaseUntil} < ${now})`;

const chunksOf = (d: { tenantId: string; id: string }, version?: SQL | number) =>
  and(eq(knowledgeChunks.tenantId, d.tenantId), eq(knowledgeChunks.documentId, d.id), version === undefined ? undefined : typeof version === "number" ? eq(knowledgeChunks.version, version) : sql`${knowledgeChunks.version} = ${version}`);

/** The statement that takes chunks out of the full-text index (before their rows are deleted): external content must be removed by its text. */
const unindex = (db: TenantDb, where: SQL | undefined) =>
  db.insert(knowledgeChunksFts).select(sql`SELECT ${knowledgeChunks.pk}, ${knowledgeChunks.text}, ${knowledgeChunks.knowledgeBaseId}, 'delete' FROM ${knowledgeChunks} WHERE ${where}`);

/** The statement that adds chunks to the full-text index. */
const index = (db: TenantDb, where: SQL | undefined) =>
  db.insert(knowledgeChunksFts).select(sql`SELECT ${knowledgeChunks.pk}, ${knowledgeChunks.text}, ${knowledgeChunks.knowledgeBaseId}, NULL FROM ${knowledgeChunks} WHERE ${where}`);

function transition(db: TenantDb, doc: DocumentRow, condition: SQL, set: Partial<DocumentRow>, type?: EventType) {
  const now = new Date().toISOString();
  const update = db
    .update(knowledgeDocuments)
    .set({ ...set, updatedAt: now })
    .where(and(sql`${isDoc(doc)}`, condition))
    .returning();
  const next = { ...doc, ...set, updatedAt: now } as DocumentRow;
  return type ? [update, eventAfterChange(db, { tenantId: doc.tenantId, type, subjectType: "document", subjectId: doc.id, data: documentSummary(next) })] as const : ([update] as const);
}

/**
 * Takes the document's latest version for this attempt (a fresh lease), clears chunks a dead attempt
 * left, and reserves `tokens` of the month's quota for its embeddings, in one transaction. Null when
 * another attempt holds it or it moved on (re-uploaded, deleted, finished).
 */
export async function claimDocument(db: TenantDb, doc: DocumentRow, tokens: number, monthlyTokens: number, now = Date.now()): Promise<{ leaseToken: string; reserved: boolean } | null> {
  const leaseToken = crypto.randomUUID();
  const claimable = unheld(doc.version, now);
  const held = docWhere(doc, heldBy(doc.version, leaseToken));
  const [, , claimed, , , reserved] = await db.batch([
    ...release(db, ingestCall(doc), docWhere(doc, claimable)),
    ...transition(db, doc, claimable, { leaseToken, leaseUntil: now + INGEST_LEASE_MS }),
    db.delete(knowledgeChunks).where(and(chunksOf(doc, doc.version), held)),
    ...reserve(db, ingestCall(doc), tokens, monthlyTokens, { condition: held, now: new Date(now) }),
  ]);
  if (!claimed[0]) return null;
  return { leaseToken, reserved: (reserved as unknown[]).length > 0 };
}

/** A chunk as ingestion writes it. */
export interface NewChunk {
  seq: number;
  text: string;
  tokens: number;
  /** Base64 float32. */
  embedding: string;
}

/** The statement writing some chunks of the held version (one JSON array read by `json_each`), pending until the index confirms them. */
export function insertChunks(db: TenantDb, doc: DocumentRow, leaseToken: string, chunks: NewChunk[], mutation: { id: string; at: number }) {
  const rows = JSON.stringify(chunks.map((c) => [chunkId(doc.id, doc.version, c.seq), c.seq, c.text, c.tokens, c.embedding]));
  const col = (i: number) => sql`json_extract(j.value, ${`$[${i}]`})`;
  return insertWhere(
    db,
    knowledgeChunks,
    {
      id: col(0),
      tenantId: doc.tenantId,
      knowledgeBaseId: doc.knowledgeBaseId,
      documentId: doc.id,
      version: doc.version,
      seq: col(1),
      text: col(2),
      tokens: col(3),
      pending: true,
      embedding: col(4),
      mutationId: mutation.id,
      mutationAt: mutation.at,
    },
    docWhere(doc, heldBy(doc.version, leaseToken)),
    sql`json_each(${rows}) j`,
  );
}

/**
 * Makes the held version the searchable one, in one transaction: its embedding usage settled, the
 * previous version's chunks out of the full-text index and deleted, this version's chunks into it,
 * the row `ready` with its counts, and `document.ready`. A searcher sees the old chunks or the new,
 * never both or neither. `confirmed`: the index already applied this version's vectors (no pending
 * copies needed). Null when the attempt no longer holds the document (nothing written).
 */
export async function finishDocument(
  db: TenantDb,
  doc: DocumentRow,
  leaseToken: string,
  o: { call: ModelCall; chunkCount: number; tokenCount: number; confirmed: boolean },
): Promise<{ doc: DocumentRow; replacedChunkIds: string[]; cost: number } | null> {
  const held = docWhere(doc, heldBy(doc.version, leaseToken));
  const billed = settle(db, ingestCall(doc), o.call, held);
  const activeVersion = sql`(SELECT ${knowledgeDocuments.activeVersion} FROM ${knowledgeDocuments} WHERE ${isDoc(doc)})`;
  const statements = [
    ...billed.statements,
    unindex(db, and(chunksOf(doc, activeVersion), held)),
    db
      .delete(knowledgeChunks)
      .where(and(chunksOf(doc), sql`${knowledgeChunks.version} <> ${doc.version}`, held))
      .returning({ id: knowledgeChunks.id }),
    index(db, and(chunksOf(doc, doc.version), held)),
    db
      .update(knowledgeChunks)
      .set({ pending: false, embedding: null })
      .where(and(chunksOf(doc, doc.version), held, sql`${o.confirmed ? 1 : 0} = 1`)),
    ...transition(
      db,
      doc,
      heldBy(doc.version, leaseToken),
      { status: "ready", activeVersion: doc.version, chunkCount: o.chunkCount, tokenCount: o.tokenCount, errorCode: null, error: null, leaseToken: null, leaseUntil: null },
      "document.ready",
    ),
  ] as const;
  const results = await db.batch(statements);
  const replaced = results[billed.statements.length + 1] as { id: string }[];
  const finished = results[billed.statements.length + 4] as DocumentRow[];
  return finished[0] ? { doc: finished[0], replacedChunkIds: replaced.map((r) => r.id), cost: billed.cost } : null;
}

/**
 * Ends the latest version `failed` with a reason: its hold given back, its chunks deleted (it never
 * reached the full-text index), `document.failed`. The previous version, if any, stays searchable.
 * `condition`: the attempt's lease, or (from the dead-letter queue) no live attempt. Returns the ids
 * of the chunks removed (their vectors are the caller's to delete), or null when nothing changed.
 */
export async function failDocument(db: TenantDb, doc: DocumentRow, condition: SQL, code: string, message: string): Promise<{ doc: DocumentRow; removedChunkIds: string[] } | null> {
  const when = docWhere(doc, condition);
  const [, , removed, failed] = await db.batch([
    ...release(db, ingestCall(doc), when),
    db
      .delete(knowledgeChunks)
      .where(and(chunksOf(doc, doc.version), when))
      .returning({ id: knowledgeChunks.id }),
    ...transition(db, doc, condition, { status: "failed", errorCode: code, error: message, leaseToken: null, leaseUntil: null }, "document.failed"),
  ]);
  return failed[0] ? { doc: failed[0], removedChunkIds: removed.map((r) => r.id) } : null;
}

/** Fails the document from the attempt holding it. */
export const failHeldDocument = (db: TenantDb, doc: DocumentRow, leaseToken: string, code: string, message: string) => failDocument(db, doc, heldBy(doc.version, leaseToken), code, message);

/**
 * Lets go of the document after a transient failure (hold given back, chunks cleared); the queue
 * delivers it again later. False when this attempt no longer held it (nothing changed).
 */
export async function letGo(db: TenantDb, doc: DocumentRow, leaseToken: string): Promise<boolean> {
  const held = docWhere(doc, heldBy(doc.version, leaseToken));
  const [, , , released] = await db.batch([
    ...release(db, ingestCall(doc), held),
    db.delete(knowledgeChunks).where(and(chunksOf(doc, doc.version), held)),
    ...transition(db, doc, heldBy(doc.version, leaseToken), { leaseToken: null, leaseUntil: null }),
  ]);
  return (released as unknown[]).length > 0;
}

/**
 * Deletes a document with every chunk of every version (out of the full-text index first), in one
 * transaction with `document.deleted` and `extra` (the audit entry). Returns what was removed, or
 * null when there was no such document.
 */
export async function deleteDocumentRows(db: TenantDb, doc: DocumentRow, extra: BatchItem<"sqlite">[]) {
  const activeVersion = sql`(SELECT ${knowledgeDocuments.activeVersion} FROM ${knowledgeDocuments} WHERE ${isDoc(doc)})`;
  const [, removed, deleted] = await db.batch([
    unindex(db, chunksOf(doc, activeVersion)),
    db.delete(knowledgeChunks).where(chunksOf(doc)).returning({ id: knowledgeChunks.id, version: knowledgeChunks.version }),
    db.delete(knowledgeDocuments).where(sql`${isDoc(doc)}`).returning(),
    eventAfterChange(db, { tenantId: doc.tenantId, type: "document.deleted", subjectType: "document", subjectId: doc.id, data: documentSummary(doc) }),
    ...extra,
  ]);
  const row = deleted[0];
  // (FTS5 counts its own changes when it deletes; the active version's chunks are the rows it held.)
  return row ? { doc: row, chunkIds: removed.map((r) => r.id), ftsRows: removed.filter((r) => r.version === row.activeVersion).length } : null;
}

/** Marks pending chunks whose vector writes the index has applied: their exact copies are no longer needed. */
export function confirmChunks(db: TenantDb, tenantId: string, ids: string[]) {
  return db
    .update(knowledgeChunks)
    .set({ pending: false, embedding: null })
    .where(and(eq(knowledgeChunks.tenantId, tenantId), sql`${knowledgeChunks.id} IN (SELECT value FROM json_each(${JSON.stringify(ids)}))`));
}

/**
 * Deletes a knowledge base with every document and chunk in it (out of the full-text index first),
 * with `document.deleted` for each document and `extra` (the base's own delete and audit entry) in
 * the same transaction. Returns the chunk ids (their vectors) and R2 keys left to delete, and the
 * results of `extra`.
 */
export async function deleteBaseRows(db: TenantDb, tenantId: string, baseId: string, extra: BatchItem<"sqlite">[]) {
  const inBase = and(eq(knowledgeDocuments.tenantId, tenantId), eq(knowledgeDocuments.knowledgeBaseId, baseId));
  const docs = await db.select().from(knowledgeDocuments).where(inBase);
  const active = sql`${knowledgeChunks.version} = (SELECT d.active_version FROM ${knowledgeDocuments} d WHERE d.tenant_id = ${knowledgeChunks.tenantId} AND d.id = ${knowledgeChunks.documentId})`;
  const chunksInBase = and(eq(knowledgeChunks.tenantId, tenantId), eq(knowledgeChunks.knowledgeBaseId, baseId));
  const results = await db.batch([
    unindex(db, and(chunksInBase, active)),
    db.delete(knowledgeChunks).where(chunksInBase).returning({ id: knowledgeChunks.id }),
    ...docs.flatMap((doc) => [
      db.delete(knowledgeDocuments).where(sql`${isDoc(doc)}`),
      eventAfterChange(db, { tenantId, type: "document.deleted", subjectType: "document", subjectId: doc.id, data: documentSummary(doc) }),
    ]),
    // Documents uploaded since the read above: deleted too (their events are the upload's loss to a delete it raced).
    db.delete(knowledgeDocuments).where(inBase).returning({ r2Key: knowledgeDocuments.r2Key }),
    ...extra,
  ]);
  const chunkIds = (results[1] as { id: string }[]).map((r) => r.id);
  const late = (results[2 + docs.length * 2] as { r2Key: string }[]).map((r) => r.r2Key);
  return { chunkIds, r2Keys: [...docs.map((d) => d.r2Key), ...late], documents: docs.length + late.length, extra: results.slice(results.length - extra.length) };
}
