import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../context";
import { ATTRIBUTES } from "../knowledge/documents";
import * as search from "../knowledge/search";
import { vectorStore } from "../providers/vectors";
import { errors, guarded, jsonBody, jsonResponse, NonBlank, router, schema31 } from "./openapi";

const Value = z.union([z.string().max(ATTRIBUTES.maxString), z.number(), z.boolean()]);
const Operators = z
  .object({ eq: Value, ne: Value, in: z.array(Value).min(1).max(100), nin: z.array(Value).min(1).max(100), gt: Value, gte: Value, lt: Value, lte: Value })
  .partial()
  .strict()
  .refine((o) => Object.keys(o).length > 0, "give at least one operator: eq, ne, in, nin, gt, gte, lt, lte")
  .openapi({ minProperties: 1 });

const SearchFields = {
  query: NonBlank(2000),
  top_k: z.number().int().min(1).max(50).default(10),
  mode: z.enum(["hybrid", "vector", "keyword"]).default("hybrid").openapi({ description: "hybrid: full-text and vector results fused by reciprocal rank (score 1 = first in both)." }),
  filters: z
    .record(z.string().regex(ATTRIBUTES.keyPattern, "an attribute name"), z.union([Value, Operators]))
    .refine((f) => Object.keys(f).length <= ATTRIBUTES.max, `at most ${ATTRIBUTES.max} attributes`)
    .optional()
    .openapi({
      description: "Document attributes: a value (equality) or operators {eq, ne, in, nin, gt, gte, lt, lte}. Every name must be an attribute some document of the bases has.",
      maxProperties: ATTRIBUTES.max,
      ...schema31({ propertyNames: { pattern: ATTRIBUTES.keyPattern.source } }),
    }),
  score_threshold: z.number().optional().openapi({ description: "Drop results scoring below this (the mode's score)." }),
};
const SearchBody = z.object(SearchFields).openapi("KnowledgeSearch");
const MultiSearchBody = z.object({ knowledge_base_ids: z.array(z.string().min(1).max(64)).min(1).max(search.MAX_BASES), ...SearchFields }).openapi("KnowledgeSearchAcrossBases");

const ResultSchema = z
  .object({
    chunk_id: z.string(),
    seq: z.number().int(),
    text: z.string(),
    knowledge_base_id: z.string(),
    document: z.object({ id: z.string(), name: z.string(), attributes: z.record(z.string(), Value) }),
    score: z.number(),
    scoring: z.object({ vector_rank: z.number().int().nullable(), keyword_rank: z.number().int().nullable(), vector_score: z.number().nullable(), keyword_score: z.number().nullable() }),
  })
  .openapi("KnowledgeSearchResult");

const AnswerSchema = z
  .object({
    data: z.array(ResultSchema),
    mode: z.enum(["hybrid", "vector", "keyword"]),
    providers: z.object({ embedding: z.string().nullable(), vectors: z.string() }),
    usage: z.object({ embedding_tokens: z.number().int() }),
  })
  .openapi("KnowledgeSearchAnswer");

const searchBase = createRoute({
  method: "post",
  path: "/v1/knowledge-bases/{id}/search",
  tags: ["Knowledge"],
  summary: "Search a knowledge base: hybrid (full-text + vector), vector or keyword",
  ...guarded("knowledge:read"),
  request: { params: z.object({ id: z.string().min(1).max(64) }), body: jsonBody(SearchBody) },
  responses: { 200: jsonResponse(AnswerSchema, "The best chunks, best first"), ...errors(400, 401, 403, 404, 413, 415, 429) },
});

const searchBases = createRoute({
  method: "post",
  path: "/v1/knowledge-bases/search",
  tags: ["Knowledge"],
  summary: "Search several knowledge bases of one project at once",
  ...guarded("knowledge:read"),
  request: { body: jsonBody(MultiSearchBody) },
  responses: { 200: jsonResponse(AnswerSchema, "The best chunks across the bases, best first"), ...errors(400, 401, 403, 404, 413, 415, 429) },
});

async function answer(c: Context<AppEnv>, ids: string[], field: string, req: search.SearchRequest): Promise<z.infer<typeof AnswerSchema>> {
  const bases = await search.basesOf(c, ids, field);
  const found = await search.searchBases(search.requestScope(c), bases, req);
  c.header("server-timing", found.timing);
  return {
    data: found.hits.map((h) => ({ chunk_id: h.chunkId, seq: h.seq, text: h.text, knowledge_base_id: h.knowledgeBaseId, document: h.document, score: h.score, scoring: h.scoring })),
    mode: req.mode,
    providers: { embedding: found.embedding?.provider ?? null, vectors: vectorStore(c.env).name },
    usage: { embedding_tokens: found.embedding?.tokens ?? 0 },
  };
}

/** Knowledge search: one base, or several of one project. */
export const knowledgeSearchRoutes = router()
  .openapi(searchBases, async (c) => {
    const { knowledge_base_ids, ...req } = c.req.valid("json");
    return c.json(await answer(c, knowledge_base_ids, "knowledge_base_ids", req), 200);
  })
  .openapi(searchBase, async (c) => c.json(await answer(c, [c.req.valid("param").id], "id", c.req.valid("json")), 200));
