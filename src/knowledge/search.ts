import { and, eq, inArray, type SQL, sql } from "drizzle-orm";
import { withinReach } from "../auth/reach";
import type { Context } from "hono";
import { debit, release, reserve, settle } from "../billing/metering";
import type { AppEnv } from "../context";
import { quotaExceeded } from "../db/quota";
import { controlDb, type TenantDb } from "../db/router";
import { knowledgeBases, knowledgeChunks, knowledgeDocuments } from "../db/tenant/schema";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import type { Env } from "../env";
import { errorFields, type Logger } from "../lib/log";
import { aiProvider } from "../providers/ai";
import { estimateTokens } from "../providers/ai/types";
import { appliedWrites, vectorStore, type Write } from "../providers/vectors";
import type { KnowledgeBaseRow } from "./bases";
import type { AttributeValue } from "./documents";
import { cosine, decodeEmbedding } from "./embedding";
import { knowledgeChunksFts } from "./fts";
import { confirmChunks } from "./store";

export type SearchMode = "hybrid" | "vector" | "keyword";
export type Condition = AttributeValue | { eq?: AttributeValue; ne?: AttributeValue; in?: AttributeValue[]; nin?: AttributeValue[]; gt?: AttributeValue; gte?: AttributeValue; lt?: AttributeValue; lte?: AttributeValue };

export interface SearchRequest {
  query: string;
  top_k: number;
  mode: SearchMode;
  filters?: Record<string, Condition>;
  score_threshold?: number;
}

export interface SearchHit {
  chunkId: string;
  seq: number;
  text: string;
  knowledgeBaseId: string;
  document: { id: string; name: string; attributes: Record<string, AttributeValue> };
  score: number;
  scoring: { vector_rank: number | null; keyword_rank: number | null; vector_score: number | null; keyword_score: number | null };
}

/** Milliseconds per step of a search, for its `Server-Timing` header (the clock moves on I/O, which is what the steps are). */
class Timing {
  private last = Date.now();
  private readonly laps: string[] = [];
  lap(name: string) {
    const now = Date.now();
    this.laps.push(`${name};dur=${now - this.last}`);
    this.last = now;
  }
  header() {
    return this.laps.join(", ");
  }
}

/**
 * Reciprocal rank fusion's constant: a result ranked r in one list adds 1 / (RRF_K + r). Smaller
 * than the paper's 60, so the top of each list counts most (what grounding takes is the top five):
 * on the golden set (`npm run eval:retrieval`) 60 left hybrid's MRR just under keyword's, 5 above
 * both modes (BENCHMARKS.md has the sweep).
 */
export const RRF_K = 5;
/** Candidates each method contributes before fusion and filtering (Vectorize answers at most 100). */
const CANDIDATES = 100;
/** Pending chunks (written, not yet confirmed by the index) searched exactly per query, at most. */
export const MAX_PENDING = 2000;
/** Query terms the full-text search uses, at most. */
const MAX_TERMS = 32;
/** Bases one search may span. */
export const MAX_BASES = 10;

/** Who searches, in which database, and who pays for the query's embedding: a request, a run or a reply. */
export interface SearchScope {
  env: Env;
  db: TenantDb;
  tenantId: string;
  monthlyTokens: number;
  userId: string;
  apiKeyId: string | null;
  /** The usage reference of the query's embedding (a fresh `srch_` id by default) and what it served. */
  reference?: string;
  sourceId?: string;
  waitUntil(promise: Promise<unknown>): void;
  log: Logger;
}

/** A request's search scope: its tenant, its credential, its execution context. */
export function requestScope(c: Context<AppEnv>): SearchScope {
  const p = c.var.principal;
  return {
    env: c.env,
    db: c.var.db,
    tenantId: c.var.tenant.id,
    monthlyTokens: c.var.plan.monthlyTokens,
    userId: p.userId,
    apiKeyId: p.kind === "api_key" ? p.keyId : null,
    waitUntil: (promise) => c.executionCtx.waitUntil(promise),
    log: c.var.log,
  };
}

/** The bases a search names: all the tenant's (else 404) and all in one project (else 400). */
export async function basesOf(c: Context<AppEnv>, ids: string[], field: string): Promise<KnowledgeBaseRow[]> {
  const unique = [...new Set(ids)];
  const rows = await c.var.db
    .select()
    .from(knowledgeBases)
    .where(and(eq(knowledgeBases.tenantId, c.var.tenant.id), inArray(knowledgeBases.id, unique), withinReach(c, knowledgeBases.projectId)));
  const missing = unique.filter((id) => !rows.some((r) => r.id === id));
  if (missing.length) throw new ApiError("NOT_FOUND", `No knowledge base ${missing.join(", ")}`, { errors: missing.map(() => ({ in: field === "id" ? "path" : "body", field, message: "no such knowledge base" })) });
  if (new Set(rows.map((r) => r.projectId)).size > 1) {
    throw new ApiError("VALIDATION_FAILED", "A search spans bases of one project", { errors: [{ in: "body", field, message: "bases of different projects" }] });
  }
  return rows;
}

/**
 * The full-text query for free text in some bases: its words, each quoted (no FTS5 syntax reaches
 * the index), any of them matching, in chunks of those bases only.
 */
export function matchExpression(query: string, baseIds: string[]): string | null {
  const words = [...new Set(query.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [])].slice(0, MAX_TERMS);
  if (!words.length) return null;
  return `knowledge_base_id : (${baseIds.map((id) => `"${id}"`).join(" OR ")}) AND text : (${words.map((w) => `"${w}"`).join(" OR ")})`;
}

const attribute = (name: string) => sql`json_extract(${knowledgeDocuments.attributes}, ${`$."${name}"`})`;
/** JSON's true and false are 1 and 0 to SQLite. */
const sqlValue = (v: AttributeValue) => (typeof v === "boolean" ? Number(v) : v);

/** The SQL of an attribute filter over the document's attributes. */
function filterSql(filters: Record<string, Condition> | undefined): SQL | undefined {
  if (!filters) return undefined;
  const parts: SQL[] = [];
  for (const [name, condition] of Object.entries(filters)) {
    const a = attribute(name);
    if (typeof condition !== "object") {
      parts.push(sql`${a} = ${sqlValue(condition)}`);
      continue;
    }
    for (const [op, v] of Object.entries(condition)) {
      if (op === "in" || op === "nin") {
        const list = JSON.stringify((v as AttributeValue[]).map(sqlValue));
        parts.push(op === "in" ? sql`${a} IN (SELECT value FROM json_each(${list}))` : sql`(${a} IS NULL OR ${a} NOT IN (SELECT value FROM json_each(${list})))`);
      } else {
        const value = sqlValue(v as AttributeValue);
        parts.push({ eq: sql`${a} = ${value}`, ne: sql`${a} IS NOT ${value}`, gt: sql`${a} > ${value}`, gte: sql`${a} >= ${value}`, lt: sql`${a} < ${value}`, lte: sql`${a} <= ${value}` }[op as "eq"]);
      }
    }
  }
  return and(...parts);
}

/**
 * Chunks searches may return: of the named bases, of their document's active version, passing the
 * filters. For rows found another way (by the full-text index, by id): the unary + keeps the
 * planner from scanning the bases' chunks through an index instead of looking those rows up.
 */
const searchable = (tenantId: string, baseIds: string[], filters: SQL | undefined) =>
  and(
    sql`+${knowledgeChunks.tenantId} = ${tenantId}`,
    sql`+${knowledgeChunks.knowledgeBaseId} IN (SELECT value FROM json_each(${JSON.stringify(baseIds)}))`,
    sql`${knowledgeChunks.version} = ${knowledgeDocuments.activeVersion}`,
    filters,
  );

const hitColumns = {
  id: knowledgeChunks.id,
  seq: knowledgeChunks.seq,
  text: knowledgeChunks.text,
  knowledgeBaseId: knowledgeChunks.knowledgeBaseId,
  // Aliased: a D1 batch reads rows by column name, and two columns named `id` would collapse into one.
  documentId: sql<string>`${knowledgeDocuments.id}`.as("document_id"),
  documentName: knowledgeDocuments.name,
  attributes: knowledgeDocuments.attributes,
};
type HitRow = { id: string; seq: number; text: string; knowledgeBaseId: string; documentId: string; documentName: string; attributes: string };

const joinDocument = and(eq(knowledgeDocuments.tenantId, knowledgeChunks.tenantId), eq(knowledgeDocuments.id, knowledgeChunks.documentId));

/** Full-text candidates whose chunks pass the filters, best first by bm25 (negated: higher is better). */
function keywordQuery(db: TenantDb, tenantId: string, baseIds: string[], filters: SQL | undefined, match: string) {
  // The index ranks inside MATCH (bases included) and stops at its limit; only those rows are joined.
  // Every indexed chunk is of an active version, so only attribute filters can drop rows: then look deeper.
  const ranked = db
    .select({ rowid: knowledgeChunksFts.rowid, rank: sql<number>`rank`.as("fts_rank") })
    .from(knowledgeChunksFts)
    .where(sql`knowledge_chunks_fts MATCH ${match}`)
    .orderBy(sql`rank`)
    .limit(filters ? CANDIDATES * 10 : CANDIDATES)
    .as("ranked");
  return db
    .select({ ...hitColumns, score: sql<number>`-${ranked.rank}`.as("keyword_score") })
    .from(ranked)
    .innerJoin(knowledgeChunks, eq(knowledgeChunks.pk, ranked.rowid))
    .innerJoin(knowledgeDocuments, joinDocument)
    .where(searchable(tenantId, baseIds, filters))
    .orderBy(sql`${ranked.rank}`)
    .limit(CANDIDATES);
}

/** The chunks of the bases whose vector writes the index has not confirmed, with their embeddings (at most MAX_PENDING). */
function pendingQuery(db: TenantDb, tenantId: string, baseIds: string[], filters: SQL | undefined) {
  return db
    .select({ ...hitColumns, embedding: knowledgeChunks.embedding, mutationId: knowledgeChunks.mutationId, mutationAt: knowledgeChunks.mutationAt })
    .from(knowledgeChunks)
    // Documents by their key for each pending chunk (the + keeps the planner from walking every chunk of each document instead).
    .innerJoin(knowledgeDocuments, and(eq(knowledgeDocuments.tenantId, knowledgeChunks.tenantId), sql`${knowledgeDocuments.id} = +${knowledgeChunks.documentId}`))
    .where(and(eq(knowledgeChunks.tenantId, tenantId), inArray(knowledgeChunks.knowledgeBaseId, baseIds), eq(knowledgeChunks.pending, true), sql`${knowledgeChunks.version} = ${knowledgeDocuments.activeVersion}`, filters))
    .limit(MAX_PENDING);
}

/** The attribute names documents of the bases carry, to refuse a filter on one none has (a typo would silently match nothing). */
function declaredQuery(db: TenantDb, tenantId: string, baseIds: string[]) {
  return db
    .selectDistinct({ name: sql<string>`j.key` })
    .from(sql`${knowledgeDocuments}, json_each(${knowledgeDocuments.attributes}) j`)
    .where(and(eq(knowledgeDocuments.tenantId, tenantId), inArray(knowledgeDocuments.knowledgeBaseId, baseIds)));
}

/**
 * Searches the bases: full-text (FTS5, bm25) and vector (the index, plus chunks it has not yet
 * confirmed, searched exactly), fused by reciprocal rank in hybrid mode. The index is asked only for
 * the tenant's namespace and these bases, and every candidate is read back from the tenant's own
 * database (active version, filters) before it is returned. The query's embedding is metered.
 */
export async function searchBases(s: SearchScope, bases: KnowledgeBaseRow[], req: SearchRequest): Promise<{ hits: SearchHit[]; embedding: { provider: string; tokens: number } | null; timing: string }> {
  const { db, tenantId } = s;
  const baseIds = bases.map((b) => b.id);
  const filters = filterSql(req.filters);
  const useVectors = req.mode !== "keyword";
  const match = req.mode === "vector" ? null : matchExpression(req.query, baseIds);
  const call = { tenantId, reference: s.reference ?? newId("srch") };
  const tokens = estimateTokens(req.query);
  const timing = new Timing();

  // Round trip one: the names filters may use, the query embedding's hold, the full-text candidates.
  const noRows = db.select({ id: knowledgeChunks.id }).from(knowledgeChunks).where(sql`0`);
  const [declared, , reserved, , keywordRows] = await db.batch([
    req.filters ? declaredQuery(db, tenantId, baseIds) : noRows,
    ...(useVectors ? reserve(db, call, tokens, s.monthlyTokens) : ([noRows, noRows, noRows] as const)),
    match ? keywordQuery(db, tenantId, baseIds, filters, match) : noRows,
  ]);
  timing.lap("db_first");
  const keyword = keywordRows as KeywordRow[];
  const names = new Set((declared as { name?: string }[]).map((d) => d.name));
  const undeclared = Object.keys(req.filters ?? {}).filter((n) => !names.has(n));
  if (undeclared.length) {
    if (useVectors) await db.batch([...release(db, call)]);
    throw new ApiError("VALIDATION_FAILED", `No document in ${baseIds.length > 1 ? "these bases" : "this base"} has the attribute ${undeclared.join(", ")}`, {
      errors: undeclared.map((n) => ({ in: "body", field: `filters.${n}`, message: "no document has this attribute" })),
    });
  }
  if (!useVectors) return { hits: fuse(req, [], keyword), embedding: null, timing: timing.header() };
  if (!(reserved as unknown[]).length) throw quotaExceeded(`This month's ${s.monthlyTokens} tokens have no room for the query's embedding`);

  // The query's embedding (paid for whatever happens next) and the index's nearest chunks.
  const provider = aiProvider(s.env);
  let values: number[];
  try {
    [values] = (await provider.embed([req.query])) as [number[]];
  } catch (err) {
    await db.batch([...release(db, call)]);
    throw err;
  }
  const model = bases[0]!.embeddingModel;
  const billed = settle(db, call, { tenantId, userId: s.userId, apiKeyId: s.apiKeyId, projectId: bases[0]!.projectId, source: "embedding", sourceId: s.sourceId ?? null, model, provider: provider.name, tokensIn: tokens, tokensOut: 0 });
  timing.lap("embed");
  const fromIndex = await vectorStore(s.env).query(tenantId, values, { topK: CANDIDATES, filter: { knowledge_base_id: { $in: baseIds } } });
  timing.lap("vectors");

  // Round trip two: the index's candidates read back from the tenant's database (active version,
  // filters), the chunks the index has not confirmed yet, and the query's usage.
  const [hydrated, pending] = await db.batch([hydrateQuery(db, tenantId, baseIds, filters, fromIndex.map((m) => m.id)), pendingQuery(db, tenantId, baseIds, filters), ...billed.statements]);
  timing.lap("read_back");
  s.waitUntil(debit(controlDb(s.env), call, billed.cost, `embedding (${model})`).catch((err) => s.log.error("search.debit_failed", { ...errorFields(err), reference: call.reference })));
  const rows = new Map((hydrated as HitRow[]).map((r) => [r.id, r]));
  const vector = mergePending(s, fromIndex.filter((m) => rows.has(m.id)), pending as PendingRow[], values, rows);
  return { hits: fuse(req, vector.map((v) => ({ ...v, row: rows.get(v.id)! })), keyword), embedding: { provider: provider.name, tokens }, timing: timing.header() };
}

type KeywordRow = HitRow & { score: number };

function hydrateQuery(db: TenantDb, tenantId: string, baseIds: string[], filters: SQL | undefined, ids: string[]) {
  return db
    .select(hitColumns)
    .from(knowledgeChunks)
    .innerJoin(knowledgeDocuments, joinDocument)
    .where(and(sql`${knowledgeChunks.id} IN (SELECT value FROM json_each(${JSON.stringify(ids)}))`, searchable(tenantId, baseIds, filters)));
}

type PendingRow = HitRow & { embedding: string | null; mutationId: string | null; mutationAt: number | null };

/**
 * Adds the chunks the index has not yet confirmed, scored exactly, to its matches (`rows` gains
 * them); chunks it has confirmed since are marked so in the background and come from the index alone.
 */
function mergePending(s: SearchScope, fromIndex: { id: string; score: number }[], pending: PendingRow[], query: number[], rows: Map<string, HitRow>): { id: string; score: number }[] {
  if (!pending.length) return fromIndex;
  const scores = new Map(fromIndex.map((m) => [m.id, m.score]));
  for (const p of pending) {
    if (!p.embedding) continue;
    const score = cosine(decodeEmbedding(p.embedding), query);
    if (!scores.has(p.id) || scores.get(p.id)! < score) scores.set(p.id, score);
    rows.set(p.id, p);
  }
  // One write per mutation, with one of its chunks to look for.
  const writes = new Map<string, Write>();
  for (const p of pending) if (p.mutationId && p.mutationAt !== null && !writes.has(p.mutationId)) writes.set(p.mutationId, { id: p.mutationId, at: p.mutationAt, sample: p.id });
  s.waitUntil(
    appliedWrites(vectorStore(s.env), s.tenantId, [...writes.values()])
      .then(async (done) => {
        const confirmed = pending.filter((p) => p.mutationId && done.has(p.mutationId)).map((p) => p.id);
        if (confirmed.length) await confirmChunks(s.db, s.tenantId, confirmed);
      })
      .catch((err) => s.log.warn("search.confirm_failed", errorFields(err))),
  );
  return [...scores].map(([id, score]) => ({ id, score })).sort((a, b) => b.score - a.score);
}

/** Ranks candidates by the mode's score: cosine, bm25 (negated, higher is better), or reciprocal rank fusion of both. */
function fuse(req: SearchRequest, vector: { id: string; score: number; row: HitRow }[], keyword: KeywordRow[]): SearchHit[] {
  const hits = new Map<string, SearchHit>();
  const entry = (r: HitRow): SearchHit => {
    let hit = hits.get(r.id);
    if (!hit) {
      hit = {
        chunkId: r.id,
        seq: r.seq,
        text: r.text,
        knowledgeBaseId: r.knowledgeBaseId,
        document: { id: r.documentId, name: r.documentName, attributes: JSON.parse(r.attributes) },
        score: 0,
        scoring: { vector_rank: null, keyword_rank: null, vector_score: null, keyword_score: null },
      };
      hits.set(r.id, hit);
    }
    return hit;
  };
  for (const [i, v] of vector.entries()) Object.assign(entry(v.row).scoring, { vector_rank: i + 1, vector_score: v.score });
  for (const [i, k] of keyword.entries()) Object.assign(entry(k).scoring, { keyword_rank: i + 1, keyword_score: k.score });
  const lists = req.mode === "hybrid" ? 2 : 1;
  // Ties in fused rank are common (first in one list and second in the other, or the reverse): the
  // one whose scores stand further above each list's weakest candidate goes first.
  const closeness = new Map<string, number>();
  if (req.mode === "hybrid") {
    const spread = (xs: number[]) => ({ min: Math.min(...xs), range: Math.max(...xs) - Math.min(...xs) || 1 });
    const v = spread(vector.map((x) => x.score));
    const k = spread(keyword.map((x) => x.score));
    for (const hit of hits.values()) {
      const s = hit.scoring;
      closeness.set(hit.chunkId, (s.vector_score === null ? 0 : (s.vector_score - v.min) / v.range) + (s.keyword_score === null ? 0 : (s.keyword_score - k.min) / k.range));
    }
  }
  for (const hit of hits.values()) {
    const s = hit.scoring;
    hit.score =
      req.mode === "vector"
        ? s.vector_score!
        : req.mode === "keyword"
          ? s.keyword_score!
          : // Normalised so 1 is first in both lists.
            ((s.vector_rank ? 1 / (RRF_K + s.vector_rank) : 0) + (s.keyword_rank ? 1 / (RRF_K + s.keyword_rank) : 0)) / (lists / (RRF_K + 1));
  }
  return [...hits.values()]
    .filter((h) => req.score_threshold === undefined || h.score >= req.score_threshold)
    .sort((a, b) => b.score - a.score || (closeness.get(b.chunkId) ?? 0) - (closeness.get(a.chunkId) ?? 0) || (a.chunkId < b.chunkId ? -1 : 1))
    .slice(0, req.top_k);
}
