import { createRoute, z } from "@hono/zod-openapi";
import * as conversations from "../conversations/store";
import { ApiError } from "../lib/errors";
import { PageQuery } from "../lib/pagination";
import { requirePermission } from "../middleware/auth";
import { principalLimits } from "../middleware/rate-limit";
import { openSocket } from "../conversations/sockets";
import { atLeastOneOf, CitationSchema, errors, guarded, jsonBody, jsonResponse, KnowledgeBaseIds, Model, NonBlank, pageOf, router } from "./openapi";

const ConversationSchema = z
  .object({
    id: z.string(),
    project_id: z.string(),
    title: z.string().nullable(),
    system_prompt: z.string().nullable(),
    model: z.string(),
    retention_days: z.number().int().nullable(),
    knowledge_base_ids: z.array(z.string()),
    persona_id: z.string().nullable(),
    message_count: z.number().int(),
    last_activity_at: z.string().nullable(),
    created_by: z.string(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("Conversation");

const MessageSchema = z
  .object({
    id: z.string(),
    seq: z.number().int(),
    role: z.enum(["user", "assistant"]),
    content: z.string(),
    author_id: z.string().nullable(),
    status: z.enum(["complete", "failed", "canceled"]),
    created_at: z.string(),
    usage: z.object({ model: z.string(), provider: z.string(), tokens_in: z.number(), tokens_out: z.number() }).nullable(),
    error: z.string().nullable(),
    citations: z
      .array(CitationSchema)
      .nullable()
      .openapi({ description: "On a grounded reply: the knowledge chunks it cites as [index]" }),
    persona: z.object({ id: z.string(), version: z.number().int() }).nullable().openapi({ description: "On a reply: the brand persona version its system prompt began with" }),
  })
  .openapi("Message");
const PersonaId = z.string().min(1).max(64).nullable().openapi({ description: "A brand persona of the project: its latest version leads the system prompt (persona, then conversation)" });

const Title = NonBlank(200);
const SystemPrompt = z.string().max(20_000);
const RetentionDays = z.number().int().min(1).max(3650);
const IdParam = z.object({ id: z.string().min(1).max(64) });
const Updatable = { title: Title.nullable(), system_prompt: SystemPrompt.nullable(), model: Model, retention_days: RetentionDays.nullable(), knowledge_base_ids: KnowledgeBaseIds, persona_id: PersonaId };

const createConversation = createRoute({
  method: "post",
  path: "/v1/conversations",
  tags: ["Conversations"],
  summary: "Start a conversation in a project",
  ...guarded("conversations:write"),
  request: {
    body: jsonBody(
      z
        .object({
          project_id: z.string().min(1).max(64),
          title: Title.optional(),
          system_prompt: SystemPrompt.optional(),
          model: Model.optional(),
          retention_days: RetentionDays.optional().openapi({ description: "Messages older than this are deleted" }),
          knowledge_base_ids: KnowledgeBaseIds.optional(),
          persona_id: PersonaId.optional(),
        })
        .openapi("CreateConversation"),
    ),
  },
  responses: { 201: jsonResponse(ConversationSchema, "The conversation"), ...errors(400, 401, 403, 404, 415) },
});

const listConversations = createRoute({
  method: "get",
  path: "/v1/conversations",
  tags: ["Conversations"],
  summary: "List conversations, newest first",
  ...guarded("conversations:read"),
  request: { query: PageQuery.extend({ project_id: z.string().min(1).max(64).optional() }) },
  responses: { 200: jsonResponse(pageOf(ConversationSchema), "A page of conversations"), ...errors(400, 401, 403) },
});

const getConversation = createRoute({
  method: "get",
  path: "/v1/conversations/{id}",
  tags: ["Conversations"],
  summary: "Get a conversation",
  ...guarded("conversations:read"),
  request: { params: IdParam },
  responses: { 200: jsonResponse(ConversationSchema, "The conversation"), ...errors(401, 403, 404) },
});

const updateConversation = createRoute({
  method: "patch",
  path: "/v1/conversations/{id}",
  tags: ["Conversations"],
  summary: "Change a conversation's title, system prompt, model or retention",
  ...guarded("conversations:write"),
  request: {
    params: IdParam,
    body: jsonBody(
      z
        .object(Object.fromEntries(Object.entries(Updatable).map(([k, v]) => [k, v.optional()])) as { [K in keyof typeof Updatable]: z.ZodOptional<(typeof Updatable)[K]> })
        .refine((b) => Object.keys(b).length > 0, "give at least one field")
        .openapi("UpdateConversation", atLeastOneOf(Updatable)),
    ),
  },
  responses: { 200: jsonResponse(ConversationSchema, "The conversation"), ...errors(400, 401, 403, 404, 415) },
});

const deleteConversation = createRoute({
  method: "delete",
  path: "/v1/conversations/{id}",
  tags: ["Conversations"],
  summary: "Delete a conversation and its whole message log",
  ...guarded("conversations:write"),
  request: { params: IdParam },
  responses: { 204: { description: "Deleted" }, ...errors(401, 403, 404) },
});

const listMessages = createRoute({
  method: "get",
  path: "/v1/conversations/{id}/messages",
  tags: ["Conversations"],
  summary: "Messages in order of seq, after a given seq",
  ...guarded("conversations:read"),
  request: {
    params: IdParam,
    query: z.object({
      after: z.coerce.number().int().min(0).default(0).openapi({ description: "Only messages with a greater seq" }),
      limit: z.coerce.number().int().min(1).max(500).default(100),
    }),
  },
  responses: { 200: jsonResponse(z.object({ data: z.array(MessageSchema), last_seq: z.number().int() }), "Messages"), ...errors(400, 401, 403, 404) },
});

const postMessage = createRoute({
  method: "post",
  path: "/v1/conversations/{id}/messages",
  tags: ["Conversations"],
  summary: "Post a message; with reply the assistant answers, streamed to every socket (and to you with Accept: text/event-stream)",
  ...guarded("conversations:write"),
  request: {
    params: IdParam,
    body: jsonBody(
      z
        .object({
          content: z.string().min(1).max(32_000),
          reply: z.boolean().optional(),
          client_id: z.string().min(1).max(100).optional().openapi({ description: "Your id for the message; a retry with the same id is not stored twice" }),
        })
        .openapi("PostMessage"),
    ),
  },
  responses: {
    201: jsonResponse(MessageSchema.extend({ reply_id: z.string().nullable() }), "The stored message, and the reply's id when one was asked for"),
    200: { description: "With reply and Accept: text/event-stream: events `message`, `delta`…, then `done` or `error`", content: { "text/event-stream": { schema: z.string() } } },
    ...errors(400, 401, 403, 404, 415),
  },
});

const connect = createRoute({
  method: "get",
  path: "/v1/conversations/{id}/connect",
  tags: ["Conversations"],
  summary: "Open the conversation's WebSocket",
  description:
    "Authenticate with Authorization: Bearer, or from a browser with the subprotocols `tessera.v1, bearer.<token>` or `?access_token=`. Frames are JSON with a `type`; see durable-objects/conversation-protocol.ts.",
  security: [{ bearer: [] }],
  middleware: [requirePermission("conversations:read", { from: "websocket", opens: "connection" })],
  request: { params: IdParam, query: z.object({ access_token: z.string().max(2000).optional() }) },
  responses: { 101: { description: "Switching to the WebSocket protocol" }, ...errors(401, 403, 404, 426) },
});

type ConversationRow = conversations.ConversationRow;

const render = (r: ConversationRow): z.infer<typeof ConversationSchema> => ({
  id: r.id,
  project_id: r.projectId,
  title: r.title,
  system_prompt: r.systemPrompt,
  model: r.model,
  retention_days: r.retentionDays,
  knowledge_base_ids: JSON.parse(r.knowledgeBaseIds) as string[],
  persona_id: r.personaId,
  message_count: r.messageCount,
  last_activity_at: r.lastActivityAt,
  created_by: r.createdBy,
  created_at: r.createdAt,
  updated_at: r.updatedAt,
});

/** Conversations: metadata in the tenant's D1, messages and sockets in each conversation's room. */
export const conversationRoutes = router()
  .openapi(createConversation, async (c) => c.json(render(await conversations.createConversation(c, c.req.valid("json"))), 201))
  .openapi(listConversations, async (c) => c.json(await conversations.listConversations(c, c.req.valid("query"), render), 200))
  .openapi(getConversation, async (c) => c.json(render(await conversations.findConversation(c, c.req.valid("param").id)), 200))
  .openapi(updateConversation, async (c) => c.json(render(await conversations.updateConversation(c, c.req.valid("param").id, c.req.valid("json"))), 200))
  .openapi(deleteConversation, async (c) => {
    await conversations.deleteConversation(c, c.req.valid("param").id);
    return c.body(null, 204);
  })
  .openapi(listMessages, async (c) => {
    const { after, limit } = c.req.valid("query");
    return c.json(await conversations.conversationHistory(c, c.req.valid("param").id, after, limit), 200);
  })
  .openapi(postMessage, async (c) => {
    const body = c.req.valid("json");
    const stream = Boolean(body.reply) && (c.req.header("accept")?.includes("text/event-stream") ?? false);
    const sent = await conversations.postMessage(c, c.req.valid("param").id, body, stream);
    if (!stream || !sent.events) return c.json({ ...sent.message, reply_id: sent.replyId }, 201);
    const head = new TextEncoder().encode(`event: message\ndata: ${JSON.stringify({ type: "message", message: sent.message })}\n\n`);
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    c.executionCtx.waitUntil(relay(head, sent.events, writable));
    return new Response(readable, { status: 200, headers: { "content-type": "text/event-stream", "cache-control": "no-store", "x-request-id": c.var.requestId } });
  })
  .openapi(connect, async (c) => {
    const { id } = c.req.valid("param");
    // Another tenant's conversation, or none, is a 404 before any upgrade.
    await conversations.findConversation(c, id);
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") throw new ApiError("UPGRADE_REQUIRED", "Connect with a WebSocket upgrade");
    const limits = c.var.config.RATE_LIMITS === "on" ? principalLimits(c.var.tenant, c.var.plan, c.var.principal) : [];
    const res = await openSocket(c.env, c.var.tenant, c.var.plan, c.var.principal, id, c.req.raw, limits);
    return res;
  });

/**
 * Writes `head`, then everything from `events`, to `out`. A client that disconnects makes a write
 * fail, which cancels the room's stream for that client alone; the reply goes on for the sockets.
 */
async function relay(head: Uint8Array, events: ReadableStream<Uint8Array>, out: WritableStream<Uint8Array>): Promise<void> {
  const writer = out.getWriter();
  const reader = events.getReader();
  try {
    await writer.write(head);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      await writer.write(value);
    }
    await writer.close();
  } catch {
    await reader.cancel().catch(() => {});
  }
}
