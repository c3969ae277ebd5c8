import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, lt } from "drizzle-orm";
import type { Context } from "hono";
import type { RoomConfig } from "../../durable-objects/conversation-room";
import type { AppEnv } from "../context";
import { actorOf, auditAfterChange, type AuditEntry } from "../db/audit";
import { tenantDb, type TenantDb } from "../db/router";
import { conversations } from "../db/tenant/schema";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { decodeCursor, page, PageQuery } from "../lib/pagination";
import { requirePermission } from "../middleware/auth";
import { principalLimits } from "../middleware/rate-limit";
import { openSocket, roomOf } from "../conversations/sockets";
import { quotaExceeded } from "../db/quota";
import { DEFAULT_CHAT_MODEL } from "../providers/ai";
import { atLeastOneOf, errors, guarded, jsonBody, jsonResponse, Model, NonBlank, pageOf, router } from "./openapi";
import { requireProject } from "../projects/store";

const ConversationSchema = z
  .object({
    id: z.string(),
    project_id: z.string(),
    title: z.string().nullable(),
    system_prompt: z.string().nullable(),
    model: z.string(),
    retention_days: z.number().int().nullable(),
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
  })
  .openapi("Message");

const Title = NonBlank(200);
const SystemPrompt = z.string().max(20_000);
const RetentionDays = z.number().int().min(1).max(3650);
const IdParam = z.object({ id: z.string().min(1).max(64) });

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
        .object({ title: Title.nullable().optional(), system_prompt: SystemPrompt.nullable().optional(), model: Model.optional(), retention_days: RetentionDays.nullable().optional() })
        .refine((b) => Object.keys(b).length > 0, "give at least one field")
        .openapi("UpdateConversation", atLeastOneOf({ title: Title, system_prompt: SystemPrompt, model: Model, retention_days: RetentionDays })),
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

type ConversationRow = typeof conversations.$inferSelect;

const render = (r: ConversationRow): z.infer<typeof ConversationSchema> => ({
  id: r.id,
  project_id: r.projectId,
  title: r.title,
  system_prompt: r.systemPrompt,
  model: r.model,
  retention_days: r.retentionDays,
  message_count: r.messageCount,
  last_activity_at: r.lastActivityAt,
  created_by: r.createdBy,
  created_at: r.createdAt,
  updated_at: r.updatedAt,
});

const room = (c: Context<AppEnv>, conversationId: string) => roomOf(c.env, c.var.tenant.id, conversationId);

function roomConfig(c: Context<AppEnv>, r: ConversationRow): RoomConfig {
  return {
    tenantId: c.var.tenant.id,
    conversationId: r.id,
    projectId: r.projectId,
    dbBinding: c.var.tenant.dbBinding,
    systemPrompt: r.systemPrompt,
    model: r.model,
    retentionDays: r.retentionDays,
  };
}

async function findConversation(c: Context<AppEnv>, id: string): Promise<ConversationRow> {
  const tenant = c.var.tenant;
  const row = await c.var.db
    .select()
    .from(conversations)
    .where(and(eq(conversations.id, id), eq(conversations.tenantId, tenant.id)))
    .get();
  if (!row) throw new ApiError("NOT_FOUND", `No conversation ${id}`);
  return row;
}

const audit = (c: Context<AppEnv>, db: TenantDb, entry: Omit<AuditEntry, "resourceType">) =>
  auditAfterChange(db, c.var.tenant.id, actorOf(c.var.principal), c.var.requestId, { ...entry, resourceType: "conversation" });

/** Conversations: metadata in the tenant's D1, messages and sockets in each conversation's room. */
export const conversationRoutes = router()
  .openapi(createConversation, async (c) => {
    const body = c.req.valid("json");
    const tenant = c.var.tenant;
    const db = c.var.db;
    const projectId = await requireProject(c, body.project_id);
    const now = new Date().toISOString();
    const row: ConversationRow = {
      id: newId("cnv"),
      tenantId: tenant.id,
      projectId,
      title: body.title ?? null,
      systemPrompt: body.system_prompt ?? null,
      model: body.model ?? DEFAULT_CHAT_MODEL,
      retentionDays: body.retention_days ?? null,
      messageCount: 0,
      lastActivityAt: null,
      createdBy: c.var.principal.userId,
      createdAt: now,
      updatedAt: now,
    };
    // The room first: if the row write then fails, an unreachable configured room is all that is left.
    await room(c, row.id).configure(roomConfig(c, row));
    await db.batch([db.insert(conversations).values(row), audit(c, db, { action: "conversation.created", resourceId: row.id, details: { project_id: projectId } })]);
    return c.json(render(row), 201);
  })
  .openapi(listConversations, async (c) => {
    const q = c.req.valid("query");
    const tenant = c.var.tenant;
    const rows = await c.var.db
      .select()
      .from(conversations)
      .where(
        and(
          eq(conversations.tenantId, tenant.id),
          q.project_id ? eq(conversations.projectId, q.project_id) : undefined,
          q.cursor ? lt(conversations.id, decodeCursor(q.cursor, "cnv")) : undefined,
        ),
      )
      .orderBy(desc(conversations.id))
      .limit(q.limit + 1);
    return c.json(page(rows, q.limit, render), 200);
  })
  .openapi(getConversation, async (c) => c.json(render(await findConversation(c, c.req.valid("param").id)), 200))
  .openapi(updateConversation, async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const current = await findConversation(c, id);
    const next: ConversationRow = {
      ...current,
      ...(body.title !== undefined && { title: body.title }),
      ...(body.system_prompt !== undefined && { systemPrompt: body.system_prompt }),
      ...(body.model !== undefined && { model: body.model }),
      ...(body.retention_days !== undefined && { retentionDays: body.retention_days }),
      updatedAt: new Date().toISOString(),
    };
    await room(c, id).configure(roomConfig(c, next));
    const db = c.var.db;
    await db.batch([
      db
        .update(conversations)
        .set({ title: next.title, systemPrompt: next.systemPrompt, model: next.model, retentionDays: next.retentionDays, updatedAt: next.updatedAt })
        .where(and(eq(conversations.id, id), eq(conversations.tenantId, c.var.tenant.id))),
      audit(c, db, { action: "conversation.updated", resourceId: id, details: { fields: Object.keys(body) } }),
    ]);
    return c.json(render(next), 200);
  })
  .openapi(deleteConversation, async (c) => {
    const { id } = c.req.valid("param");
    await findConversation(c, id);
    // The log first: a retry after a failure below finds the row and finishes the job.
    await room(c, id).destroy();
    const db = c.var.db;
    await db.batch([
      db.delete(conversations).where(and(eq(conversations.id, id), eq(conversations.tenantId, c.var.tenant.id))),
      audit(c, db, { action: "conversation.deleted", resourceId: id }),
    ]);
    return c.body(null, 204);
  })
  .openapi(listMessages, async (c) => {
    const { id } = c.req.valid("param");
    const { after, limit } = c.req.valid("query");
    const conversation = await findConversation(c, id);
    const data = await room(c, id).history(after, limit);
    return c.json({ data, last_seq: Math.max(conversation.messageCount, data.at(-1)?.seq ?? 0) }, 200);
  })
  .openapi(postMessage, async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    await findConversation(c, id);
    const stub = room(c, id);
    const p = c.var.principal;
    const author = { userId: p.userId, ...(p.kind === "api_key" && { apiKeyId: p.keyId }) };
    const stream = Boolean(body.reply) && (c.req.header("accept")?.includes("text/event-stream") ?? false);
    const plan = c.var.plan;
    const sent = await stub.send(author, body.content, { clientId: body.client_id, reply: body.reply, stream, monthlyTokens: plan.monthlyTokens });
    if (!sent.ok) throw sent.code === "TENANT_SUSPENDED" ? new ApiError("TENANT_SUSPENDED", sent.detail) : quotaExceeded(sent.detail);
    if (!stream || !sent.events) return c.json({ ...sent.message, reply_id: sent.replyId }, 201);
    const head = new TextEncoder().encode(`event: message\ndata: ${JSON.stringify({ type: "message", message: sent.message })}\n\n`);
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    c.executionCtx.waitUntil(relay(head, sent.events, writable));
    return new Response(readable, { status: 200, headers: { "content-type": "text/event-stream", "cache-control": "no-store", "x-request-id": c.var.requestId } });
  })
  .openapi(connect, async (c) => {
    const { id } = c.req.valid("param");
    // Another tenant's conversation, or none, is a 404 before any upgrade.
    await findConversation(c, id);
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
