import { createRoute, z } from "@hono/zod-openapi";
import * as documents from "../knowledge/documents";
import { documentSummary } from "../knowledge/store";
import { DOCUMENT_TYPES, MAX_DOCUMENT_BYTES } from "../knowledge/text";
import { DOCUMENT_STATUSES } from "../db/tenant/schema";
import { PageQuery } from "../lib/pagination";
import { errors, guarded, jsonBody, jsonResponse, NonBlank, pageOf, router, schema31 } from "./openapi";

const Attributes = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]));

/** Attributes as a client sends them in JSON: the same rules as the upload's `attributes`. */
const AttributesInput = z
  .record(z.string().regex(documents.ATTRIBUTES.keyPattern, "a letter or _ then up to 63 letters, digits, _ . -"), z.union([z.string().max(documents.ATTRIBUTES.maxString), z.number(), z.boolean()]))
  .refine((a) => Object.keys(a).length <= documents.ATTRIBUTES.max, `at most ${documents.ATTRIBUTES.max} attributes`)
  .openapi({ maxProperties: documents.ATTRIBUTES.max, ...schema31({ propertyNames: { pattern: documents.ATTRIBUTES.keyPattern.source } }) });

const DocumentSchema = z
  .object({
    id: z.string(),
    knowledge_base_id: z.string(),
    project_id: z.string(),
    name: z.string(),
    version: z.number().int().openapi({ description: "The latest upload's version; `status` is its status." }),
    active_version: z.number().int().nullable().openapi({ description: "The version searches see (null until one is ready). The previous version stays searchable while the next is processed." }),
    status: z.enum(DOCUMENT_STATUSES),
    content_type: z.string(),
    size: z.number().int(),
    sha256: z.string(),
    attributes: Attributes,
    chunk_count: z.number().int().nullable().openapi({ description: "Chunks of the active version." }),
    token_count: z.number().int().nullable(),
    error: z.object({ code: z.string(), message: z.string() }).nullable().openapi({ description: "Why the latest version failed: empty_document, unsupported_encoding, invalid_json, too_many_tokens, provider_refused, quota_exceeded, tenant_suspended or ingest_exhausted." }),
    created_by: z.string(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("Document");

const ChunkSchema = z.object({ id: z.string(), seq: z.number().int(), text: z.string(), tokens: z.number().int(), indexed: z.boolean() }).openapi("Chunk");

const BaseParam = z.object({ id: z.string().min(1).max(64) });
const DocParam = BaseParam.extend({ doc: z.string().min(1).max(64) });

const uploadDocument = createRoute({
  method: "post",
  path: "/v1/knowledge-bases/{id}/documents",
  tags: ["Knowledge"],
  summary: "Upload a document (or the next version of one by its name); ingested on a queue",
  description: `The raw body, one of ${DOCUMENT_TYPES.join(", ")} (HTML is read as its text), at most ${MAX_DOCUMENT_BYTES} bytes. Answers 202 with status \`processing\`; the document ends \`ready\` (searchable) or \`failed\` with a specific error.`,
  ...guarded("knowledge:write"),
  request: {
    params: BaseParam,
    query: z.object({
      name: NonBlank(255),
      attributes: z.string().max(8192).optional().openapi({ description: "JSON object of up to 16 string, number or boolean values for search filters (or the `Tessera-Attributes` header)." }),
    }),
    body: {
      required: true,
      description: `The document itself, with Content-Length and Content-Type (${DOCUMENT_TYPES.join(", ")}).`,
      // One entry for all of them: a declared application/json body would be parsed and validated as JSON by the router.
      content: { "*/*": { schema: z.string().openapi({ format: "binary" }) } },
    },
  },
  responses: { 202: jsonResponse(DocumentSchema, "Stored; ingestion queued"), ...errors(400, 401, 403, 404, 409, 411, 413, 415) },
});

const listDocuments = createRoute({
  method: "get",
  path: "/v1/knowledge-bases/{id}/documents",
  tags: ["Knowledge"],
  summary: "List a knowledge base's documents, newest first",
  ...guarded("knowledge:read"),
  request: { params: BaseParam, query: PageQuery.extend({ status: z.enum(DOCUMENT_STATUSES).optional() }) },
  responses: { 200: jsonResponse(pageOf(DocumentSchema), "A page of documents"), ...errors(400, 401, 403, 404) },
});

const getDocument = createRoute({
  method: "get",
  path: "/v1/knowledge-bases/{id}/documents/{doc}",
  tags: ["Knowledge"],
  summary: "Get a document and its ingestion status",
  ...guarded("knowledge:read"),
  request: { params: DocParam },
  responses: { 200: jsonResponse(DocumentSchema, "The document"), ...errors(401, 403, 404) },
});

const listChunks = createRoute({
  method: "get",
  path: "/v1/knowledge-bases/{id}/documents/{doc}/chunks",
  tags: ["Knowledge"],
  summary: "The chunks of a document's active version, in order",
  ...guarded("knowledge:read"),
  request: { params: DocParam, query: PageQuery },
  responses: { 200: jsonResponse(pageOf(ChunkSchema), "A page of chunks"), ...errors(400, 401, 403, 404) },
});

const updateDocument = createRoute({
  method: "patch",
  path: "/v1/knowledge-bases/{id}/documents/{doc}",
  tags: ["Knowledge"],
  summary: "Replace a document's attributes (search filters see them at once; nothing is re-embedded)",
  ...guarded("knowledge:write"),
  request: { params: DocParam, body: jsonBody(z.object({ attributes: AttributesInput }).openapi("UpdateDocument")) },
  responses: { 200: jsonResponse(DocumentSchema, "The document"), ...errors(400, 401, 403, 404, 413, 415) },
});

const deleteDocument = createRoute({
  method: "delete",
  path: "/v1/knowledge-bases/{id}/documents/{doc}",
  tags: ["Knowledge"],
  summary: "Delete a document: its chunks, vectors, full-text rows and original",
  ...guarded("knowledge:write"),
  request: { params: DocParam },
  responses: {
    200: jsonResponse(
      z.object({ id: z.string(), deleted: z.literal(true), removed: z.object({ chunks: z.number().int(), vectors: z.number().int(), full_text_rows: z.number().int(), bytes: z.number().int() }) }).openapi("DocumentDeleted"),
      "What was removed",
    ),
    ...errors(401, 403, 404),
  },
});

const render = (d: documents.DocumentRow): z.infer<typeof DocumentSchema> => ({
  ...documentSummary(d),
  error: d.errorCode ? { code: d.errorCode, message: d.error ?? "" } : null,
  content_type: d.contentType,
  sha256: d.sha256,
  attributes: JSON.parse(d.attributes),
  created_by: d.createdBy,
  created_at: d.createdAt,
  updated_at: d.updatedAt,
});

const renderChunk = (k: documents.ChunkRow): z.infer<typeof ChunkSchema> => ({ id: k.id, seq: k.seq, text: k.text, tokens: k.tokens, indexed: !k.pending });

/** A knowledge base's documents: uploaded raw, ingested on the `tessera-ingest` queue. */
export const documentRoutes = router()
  .openapi(uploadDocument, async (c) => {
    const doc = await documents.uploadDocument(c, c.req.valid("param").id, c.req.valid("query"));
    return c.json(render(doc), 202, { location: `/v1/knowledge-bases/${doc.knowledgeBaseId}/documents/${doc.id}` });
  })
  .openapi(listDocuments, async (c) => c.json(await documents.listDocuments(c, c.req.valid("param").id, c.req.valid("query"), render), 200))
  .openapi(getDocument, async (c) => {
    const { id, doc } = c.req.valid("param");
    return c.json(render(await documents.findDocument(c, id, doc)), 200);
  })
  .openapi(listChunks, async (c) => {
    const { id, doc } = c.req.valid("param");
    return c.json(await documents.listChunks(c, id, doc, c.req.valid("query"), renderChunk), 200);
  })
  .openapi(updateDocument, async (c) => {
    const { id, doc } = c.req.valid("param");
    return c.json(render(await documents.updateDocumentAttributes(c, id, doc, c.req.valid("json").attributes)), 200);
  })
  .openapi(deleteDocument, async (c) => {
    const { id, doc } = c.req.valid("param");
    return c.json({ id: doc, deleted: true as const, removed: await documents.deleteDocument(c, id, doc) }, 200);
  });
