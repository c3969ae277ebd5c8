import { createRoute, z } from "@hono/zod-openapi";
import * as bases from "../knowledge/bases";
import { PageQuery } from "../lib/pagination";
import { atLeastOneOf, errors, guarded, jsonBody, jsonResponse, NonBlank, pageOf, router } from "./openapi";

const { maxTokens } = bases.CHUNKING;

const Chunking = z
  .object({
    max_tokens: z.number().int().min(maxTokens.min).max(maxTokens.max).optional().openapi({ description: `Tokens per chunk, ${maxTokens.min}–${maxTokens.max} (default ${maxTokens.default})` }),
    overlap_tokens: z.number().int().min(0).max(maxTokens.max / 2).optional().openapi({ description: `Tokens consecutive chunks share, at most half of max_tokens (default ${bases.CHUNKING.overlapDefault})` }),
  })
  .openapi("Chunking");

const KnowledgeBaseSchema = z
  .object({
    id: z.string(),
    project_id: z.string(),
    name: z.string(),
    description: z.string().nullable(),
    embedding: z.object({ model: z.string(), dimensions: z.number().int() }),
    chunking: z.object({ max_tokens: z.number().int(), overlap_tokens: z.number().int() }),
    created_by: z.string(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("KnowledgeBase");

const Name = NonBlank(200);
const Description = z.string().max(5000).nullable();
const IdParam = z.object({ id: z.string().min(1).max(64) });

const createKnowledgeBase = createRoute({
  method: "post",
  path: "/v1/knowledge-bases",
  tags: ["Knowledge"],
  summary: "Create a knowledge base in a project",
  description: `Its embedding model is fixed at creation (${bases.DEFAULT_EMBEDDING.model}, ${bases.DEFAULT_EMBEDDING.dimensions} dimensions).`,
  ...guarded("knowledge:write"),
  request: {
    body: jsonBody(z.object({ project_id: z.string().min(1).max(64), name: Name, description: Description.optional(), chunking: Chunking.optional() }).openapi("CreateKnowledgeBase")),
  },
  responses: { 201: jsonResponse(KnowledgeBaseSchema, "The knowledge base"), ...errors(400, 401, 403, 404, 413, 415) },
});

const listKnowledgeBases = createRoute({
  method: "get",
  path: "/v1/knowledge-bases",
  tags: ["Knowledge"],
  summary: "List knowledge bases, newest first",
  ...guarded("knowledge:read"),
  request: { query: PageQuery.extend({ project_id: z.string().min(1).max(64).optional() }) },
  responses: { 200: jsonResponse(pageOf(KnowledgeBaseSchema), "A page of knowledge bases"), ...errors(400, 401, 403) },
});

const getKnowledgeBase = createRoute({
  method: "get",
  path: "/v1/knowledge-bases/{id}",
  tags: ["Knowledge"],
  summary: "Get a knowledge base",
  ...guarded("knowledge:read"),
  request: { params: IdParam },
  responses: { 200: jsonResponse(KnowledgeBaseSchema, "The knowledge base"), ...errors(401, 403, 404) },
});

const updateKnowledgeBase = createRoute({
  method: "patch",
  path: "/v1/knowledge-bases/{id}",
  tags: ["Knowledge"],
  summary: "Rename a knowledge base, or change its chunking for documents ingested from now on",
  ...guarded("knowledge:write"),
  request: {
    params: IdParam,
    body: jsonBody(
      z
        .object({ name: Name.optional(), description: Description.optional(), chunking: Chunking.optional() })
        .refine((b) => Object.keys(b).length > 0, "give at least one of name, description, chunking")
        .openapi("UpdateKnowledgeBase", atLeastOneOf({ name: Name, description: Description, chunking: Chunking })),
    ),
  },
  responses: { 200: jsonResponse(KnowledgeBaseSchema, "The knowledge base"), ...errors(400, 401, 403, 404, 413, 415) },
});

const deleteKnowledgeBase = createRoute({
  method: "delete",
  path: "/v1/knowledge-bases/{id}",
  tags: ["Knowledge"],
  summary: "Delete a knowledge base",
  ...guarded("knowledge:write"),
  request: { params: IdParam },
  responses: { 204: { description: "Deleted" }, ...errors(401, 403, 404) },
});

const render = (b: bases.KnowledgeBaseRow): z.infer<typeof KnowledgeBaseSchema> => ({
  id: b.id,
  project_id: b.projectId,
  name: b.name,
  description: b.description,
  embedding: { model: b.embeddingModel, dimensions: b.dimensions },
  chunking: { max_tokens: b.chunkMaxTokens, overlap_tokens: b.chunkOverlapTokens },
  created_by: b.createdBy,
  created_at: b.createdAt,
  updated_at: b.updatedAt,
});

/** Knowledge bases: the documents a project's replies and runs will be grounded in. */
export const knowledgeRoutes = router()
  .openapi(createKnowledgeBase, async (c) => c.json(render(await bases.createKnowledgeBase(c, c.req.valid("json"))), 201))
  .openapi(listKnowledgeBases, async (c) => c.json(await bases.listKnowledgeBases(c, c.req.valid("query"), render), 200))
  .openapi(getKnowledgeBase, async (c) => c.json(render(await bases.findKnowledgeBase(c, c.req.valid("param").id)), 200))
  .openapi(updateKnowledgeBase, async (c) => c.json(render(await bases.updateKnowledgeBase(c, c.req.valid("param").id, c.req.valid("json"))), 200))
  .openapi(deleteKnowledgeBase, async (c) => {
    await bases.deleteKnowledgeBase(c, c.req.valid("param").id);
    return c.body(null, 204);
  });
