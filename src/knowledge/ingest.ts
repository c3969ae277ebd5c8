import { z } from "@hono/zod-openapi";
import { tenantById } from "../db/directory";
import { and, eq, isNull, lt, or } from "drizzle-orm";
import { debit, type ModelCall, settle } from "../billing/metering";
import { planOf } from "../db/plans";
import { controlDb, type TenantDb, tenantDb } from "../db/router";
import { knowledgeBases, knowledgeDocuments } from "../db/tenant/schema";
import type { Env } from "../env";
import { createLogger, errorFields, type Logger } from "../lib/log";
import { aiProvider, ProviderError } from "../providers/ai";
import { estimateTokens } from "../providers/ai/types";
import { appliedWrites, vectorStore } from "../providers/vectors";
import { backoffSeconds } from "../runs/consumer";
import { encodeEmbedding } from "./embedding";
import {
  chunkId,
  claimDocument,
  type DocumentRow,
  failDocument,
  failHeldDocument,
  finishDocument,
  ingestCall,
  insertChunks,
  letGo,
  type NewChunk,
  unheld,
} from "./store";
import { chunkText, extractText, IngestError, MAX_DOCUMENT_TOKENS } from "./text";
import { bucketOf } from "../tenants/residency";

/** The body of a `tessera-ingest` message: one version of one document. Versioned, like run messages. */
export const IngestMessage = z.object({ v: z.literal(1), tenant_id: z.string().min(1).max(64), document_id: z.string().min(1).max(64), version: z.number().int().min(1) });
export type IngestMessage = z.infer<typeof IngestMessage>;

/** Texts per embedding call (Workers AI's batch limit for bge models). */
export const EMBED_BATCH = 100;
/** Chunks written per statement (as one JSON array) and statements per database batch. */
const CHUNKS_PER_STATEMENT = 50;
const STATEMENTS_PER_BATCH = 10;

interface Target {
  db: TenantDb;
  /** The tenant's bucket (its jurisdiction's). */
  bucket: R2Bucket;
  monthlyTokens: number;
  suspended: boolean;
}

async function targetOf(env: Env, tenantId: string): Promise<Target | null> {
  const tenant = await tenantById(env, tenantId);
  if (!tenant) return null;
  const plan = await planOf(env, tenant.planId);
  return { db: tenantDb(env, tenant), bucket: bucketOf(env, tenant), monthlyTokens: plan.monthlyTokens, suspended: tenant.status === "suspended" };
}

const readDocument = (db: TenantDb, tenantId: string, id: string) =>
  db
    .select()
    .from(knowledgeDocuments)
    .where(and(eq(knowledgeDocuments.tenantId, tenantId), eq(knowledgeDocuments.id, id)))
    .get();

function parse(message: Message<unknown>, log: Logger): IngestMessage | null {
  const body = IngestMessage.safeParse(message.body);
  if (body.success) return body.data;
  log.error("ingest.message_invalid", { message_id: message.id, issues: body.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`) });
  message.ack();
  return null;
}

/** The `tessera-ingest` queue: each message ingests its document's version at most once to `ready` or `failed`, whatever the deliveries. */
export async function consumeIngest(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const log = createLogger({ queue: batch.queue });
  await Promise.all(
    batch.messages.map(async (message) => {
      const body = parse(message, log);
      if (!body) return;
      try {
        await ingest(env, message, body, log);
      } catch (err) {
        log.error("ingest.delivery_failed", { ...errorFields(err), document_id: body.document_id, tenant_id: body.tenant_id, attempts: message.attempts });
        message.retry({ delaySeconds: backoffSeconds(message.attempts) });
      }
    }),
  );
}

async function ingest(env: Env, message: Message<unknown>, body: IngestMessage, log: Logger): Promise<void> {
  const fields = { document_id: body.document_id, version: body.version, tenant_id: body.tenant_id, delivery: message.attempts };
  const target = await targetOf(env, body.tenant_id);
  const doc = target && (await readDocument(target.db, body.tenant_id, body.document_id));
  if (!target || !doc || doc.version !== body.version || doc.status !== "processing") {
    // Deleted, re-uploaded since, or already ingested by another delivery.
    log.info("ingest.skipped", { ...fields, status: doc?.status ?? "gone", latest: doc?.version });
    return message.ack();
  }
  const { db } = target;
  const now = Date.now();
  if (doc.leaseUntil !== null && doc.leaseUntil >= now) {
    log.info("ingest.held_elsewhere", fields);
    return message.retry({ delaySeconds: Math.min(43_200, Math.ceil((doc.leaseUntil - now) / 1000) + 5) });
  }
  const failUnheld = async (code: string, reason: string) => {
    await failDocument(db, doc, unheld(doc.version, now), code, reason);
    log.info("ingest.failed", { ...fields, code });
    message.ack();
  };
  if (target.suspended) return failUnheld("tenant_suspended", "The tenant was suspended before the document could be ingested");
  const base = await db
    .select()
    .from(knowledgeBases)
    .where(and(eq(knowledgeBases.tenantId, doc.tenantId), eq(knowledgeBases.id, doc.knowledgeBaseId)))
    .get();
  const object = base && (await target.bucket.get(doc.r2Key));
  if (!base || !object) {
    log.info("ingest.skipped", { ...fields, status: base ? "replaced" : "base_deleted" });
    return message.ack();
  }
  let pieces: { text: string; tokens: number }[];
  try {
    const text = extractText(await object.arrayBuffer(), doc.contentType);
    // Refused before it is cut up: chunking several megabytes of text is the costly part.
    const textTokens = estimateTokens(text);
    if (textTokens > MAX_DOCUMENT_TOKENS) throw new IngestError("too_many_tokens", `The document holds about ${textTokens} tokens of text; the limit is ${MAX_DOCUMENT_TOKENS}`);
    pieces = chunkText(text, base.chunkMaxTokens, base.chunkOverlapTokens);
  } catch (err) {
    if (err instanceof IngestError) return failUnheld(err.code, err.message);
    throw err;
  }
  const tokens = pieces.reduce((n, p) => n + p.tokens, 0);
  const claim = await claimDocument(db, doc, tokens, target.monthlyTokens, now);
  if (!claim) {
    log.info("ingest.claim_lost", fields);
    return message.retry({ delaySeconds: 5 });
  }
  const { leaseToken } = claim;
  if (!claim.reserved) {
    await failHeldDocument(db, doc, leaseToken, "quota_exceeded", `This month's ${target.monthlyTokens} tokens have no room for this document's ${tokens} embedding tokens`);
    log.info("ingest.failed", { ...fields, code: "quota_exceeded" });
    return message.ack();
  }

  const vectors = vectorStore(env);
  const ids = pieces.map((_, seq) => chunkId(doc.id, doc.version, seq));
  try {
    return await ingestClaimed(env, message, { db, doc, base, leaseToken, pieces, tokens, ids, fields }, log);
  } catch (err) {
    // Unexpected (a database error, a bug): give the version back and take out the vectors this
    // attempt may have written (only if it still held the version: else they may be the ready ones).
    if (await letGo(db, doc, leaseToken).catch(() => false)) await vectors.deleteByIds(doc.tenantId, ids).catch(() => {});
    throw err;
  }
}

interface Claimed {
  db: TenantDb;
  doc: DocumentRow;
  base: typeof knowledgeBases.$inferSelect;
  leaseToken: string;
  pieces: { text: string; tokens: number }[];
  tokens: number;
  ids: string[];
  fields: Record<string, unknown>;
}

/** Embeds, writes and finishes a version this attempt holds. */
async function ingestClaimed(env: Env, message: Message<unknown>, { db, doc, base, leaseToken, pieces, tokens, ids, fields }: Claimed, log: Logger): Promise<void> {
  const provider = aiProvider(env);
  const vectors = vectorStore(env);
  let embeddings: number[][];
  let mutation: { id: string; at: number };
  try {
    embeddings = [];
    for (let i = 0; i < pieces.length; i += EMBED_BATCH) embeddings.push(...(await provider.embed(pieces.slice(i, i + EMBED_BATCH).map((p) => p.text))));
    const written = await vectors.upsert(
      doc.tenantId,
      embeddings.map((values, seq) => ({ id: ids[seq]!, values, metadata: { knowledge_base_id: doc.knowledgeBaseId, document_id: doc.id, project_id: doc.projectId } })),
    );
    mutation = { id: written.mutationId, at: Date.now() };
  } catch (err) {
    if (err instanceof ProviderError && !err.retryable) {
      await failHeldDocument(db, doc, leaseToken, "provider_refused", `The embedding model refused the document: ${err.message.slice(0, 300)}`);
      log.info("ingest.failed", { ...fields, code: "provider_refused" });
      return message.ack();
    }
    // A 5xx, capacity, or the index unavailable: give the document back and try again later.
    if (await letGo(db, doc, leaseToken)) await vectors.deleteByIds(doc.tenantId, ids).catch(() => {});
    const delay = backoffSeconds(message.attempts);
    log.warn("ingest.retrying", { ...errorFields(err), ...fields, retry_in_seconds: delay });
    return message.retry({ delaySeconds: delay });
  }

  const chunks: NewChunk[] = pieces.map((p, seq) => ({ seq, text: p.text, tokens: p.tokens, embedding: encodeEmbedding(embeddings[seq]!) }));
  const statements = [];
  for (let i = 0; i < chunks.length; i += CHUNKS_PER_STATEMENT) statements.push(insertChunks(db, doc, leaseToken, chunks.slice(i, i + CHUNKS_PER_STATEMENT), mutation));
  for (let i = 0; i < statements.length; i += STATEMENTS_PER_BATCH) {
    const part = statements.slice(i, i + STATEMENTS_PER_BATCH);
    await db.batch(part as [(typeof part)[number], ...typeof part]);
  }
  const confirmed = (await appliedWrites(vectors, doc.tenantId, [{ ...mutation, sample: ids.at(-1)! }])).has(mutation.id);
  const call: ModelCall = {
    tenantId: doc.tenantId,
    userId: doc.createdBy,
    apiKeyId: null,
    projectId: doc.projectId,
    source: "embedding",
    sourceId: doc.id,
    model: base.embeddingModel,
    provider: provider.name,
    tokensIn: tokens,
    tokensOut: 0,
  };
  const finished = await finishDocument(db, doc, leaseToken, { call, chunkCount: chunks.length, tokenCount: tokens, confirmed });
  if (!finished) {
    // Deleted or re-uploaded while this attempt worked: its vectors go; the embeddings it made are still billed.
    await vectors.deleteByIds(doc.tenantId, ids);
    const billed = settle(db, ingestCall(doc), call);
    await db.batch(billed.statements);
    await debit(controlDb(env), ingestCall(doc), billed.cost, `embeddings (${base.embeddingModel})`);
    log.info("ingest.superseded", fields);
    return message.ack();
  }
  await debit(controlDb(env), ingestCall(doc), finished.cost, `embeddings (${base.embeddingModel})`);
  if (finished.replacedChunkIds.length) await vectors.deleteByIds(doc.tenantId, finished.replacedChunkIds);
  log.info("ingest.ready", { ...fields, chunks: chunks.length, tokens, confirmed });
  message.ack();
}

/**
 * The ingest dead-letter queue: a version whose message used up its retries ends `failed`, unless
 * an attempt still holds it (that attempt will end it).
 */
export async function consumeDeadIngest(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const log = createLogger({ queue: batch.queue });
  await Promise.all(
    batch.messages.map(async (message) => {
      const body = parse(message, log);
      if (!body) return;
      const fields = { document_id: body.document_id, tenant_id: body.tenant_id, version: body.version };
      try {
        const target = await targetOf(env, body.tenant_id);
        const doc = target && (await readDocument(target.db, body.tenant_id, body.document_id));
        if (!target || !doc || doc.version !== body.version || doc.status !== "processing") return message.ack();
        const failed = await failDocument(target.db, doc, unheld(doc.version), "ingest_exhausted", `Gave up after ${message.attempts} deliveries; the embedding provider or the index kept failing`);
        if (failed?.removedChunkIds.length) await vectorStore(env).deleteByIds(doc.tenantId, failed.removedChunkIds);
        log.warn("ingest.dead_lettered", { ...fields, failed: Boolean(failed) });
        message.ack();
      } catch (err) {
        log.error("ingest.dead_letter_failed", { ...errorFields(err), ...fields });
        message.retry({ delaySeconds: 60 });
      }
    }),
  );
}

/**
 * Queues again the versions left `processing` with no attempt on them for `STUCK_AFTER_MS` (their
 * send failed, or every delivery died): the claim makes a second message harmless. From the cron sweep.
 */
export async function requeueStuckDocuments(env: Env, db: TenantDb, tenantId: string, cutoff: string, now = Date.now()): Promise<number> {
  const stuck = await db
    .select({ id: knowledgeDocuments.id, version: knowledgeDocuments.version })
    .from(knowledgeDocuments)
    .where(
      and(
        eq(knowledgeDocuments.tenantId, tenantId),
        eq(knowledgeDocuments.status, "processing"),
        or(isNull(knowledgeDocuments.leaseUntil), lt(knowledgeDocuments.leaseUntil, now)),
        lt(knowledgeDocuments.updatedAt, cutoff),
      ),
    )
    .limit(100);
  if (stuck.length) await env.INGEST_QUEUE.sendBatch(stuck.map((d) => ({ body: { v: 1, tenant_id: tenantId, document_id: d.id, version: d.version } satisfies IngestMessage, contentType: "json" as const })));
  return stuck.length;
}
