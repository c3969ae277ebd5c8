import { and, eq, sql } from "drizzle-orm";
import type { Context } from "hono";
import type { RoomConfig } from "../../durable-objects/conversation-room";
import { withinReach } from "../auth/reach";
import type { AppEnv } from "../context";
import { auditChange } from "../db/audit";
import { eventAfterChange } from "../db/outbox";
import { findReachable, listReachable } from "../db/owned";
import { quotaExceeded } from "../db/quota";
import type { TenantDb } from "../db/router";
import { conversations } from "../db/tenant/schema";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { requireBases } from "../knowledge/bases";
import { latestPersona, personaPrompt, requirePersona } from "../content/personas";
import { requireProject } from "../projects/store";
import { DEFAULT_CHAT_MODEL } from "../providers/ai";
import { roomOf } from "./sockets";

export type ConversationRow = typeof conversations.$inferSelect;

/** A conversation's settings as the API takes them. */
export interface ConversationFields {
  title?: string | null;
  system_prompt?: string | null;
  model?: string;
  retention_days?: number | null;
  knowledge_base_ids?: string[];
  persona_id?: string | null;
}

const room = (c: Context<AppEnv>, conversationId: string) => roomOf(c.env, c.var.tenant, conversationId);
const isConversation = (c: Context<AppEnv>, id: string) => and(eq(conversations.id, id), eq(conversations.tenantId, c.var.tenant.id), withinReach(c, conversations.projectId));

/**
 * What the room needs to know of its conversation. Its system prompt in the documented order: the
 * persona's latest version (when it names one), then the conversation's own; the room records the
 * persona version on each reply.
 */
async function roomConfig(c: Context<AppEnv>, r: ConversationRow): Promise<RoomConfig> {
  const persona = r.personaId ? await latestPersona(c, r.personaId) : null;
  return {
    tenantId: c.var.tenant.id,
    conversationId: r.id,
    projectId: r.projectId,
    dbBinding: c.var.tenant.dbBinding,
    systemPrompt: [persona && personaPrompt(persona.name, persona.version), r.systemPrompt].filter(Boolean).join("\n\n") || null,
    model: r.model,
    retentionDays: r.retentionDays,
    knowledgeBaseIds: JSON.parse(r.knowledgeBaseIds) as string[],
    persona: persona ? { id: persona.id, version: persona.version.version } : null,
  };
}

/** The most conversations a persona's new version reaches at once (the rest take it at their next change). */
const RECONFIGURE_AT_ONCE = 200;

/** After a persona has a new version: the rooms of the conversations naming it take it now. */
export async function reconfigureNaming(c: Context<AppEnv>, personaId: string): Promise<void> {
  const rows = await c.var.db
    .select()
    .from(conversations)
    .where(and(eq(conversations.tenantId, c.var.tenant.id), eq(conversations.personaId, personaId)))
    .limit(RECONFIGURE_AT_ONCE);
  await Promise.all(rows.map(async (r) => room(c, r.id).configure(await roomConfig(c, r))));
}

/** These conversations' rooms take their rows as they now are. */
export async function reconfigureConversations(c: Context<AppEnv>, ids: string[]): Promise<void> {
  if (!ids.length) return;
  const rows = await c.var.db
    .select()
    .from(conversations)
    .where(and(eq(conversations.tenantId, c.var.tenant.id), sql`${conversations.id} IN (SELECT value FROM json_each(${JSON.stringify(ids.slice(0, RECONFIGURE_AT_ONCE))}))`));
  await Promise.all(rows.map(async (r) => room(c, r.id).configure(await roomConfig(c, r))));
}

/** What events and webhooks say about a conversation (its messages stay in its room). */
export function conversationSummary(r: ConversationRow) {
  return { id: r.id, project_id: r.projectId, title: r.title, model: r.model, knowledge_base_ids: JSON.parse(r.knowledgeBaseIds) as string[], created_by: r.createdBy };
}

export const findConversation = (c: Context<AppEnv>, id: string) => findReachable(c, conversations, id, "conversation");

export const listConversations = <U>(c: Context<AppEnv>, q: { limit: number; cursor?: string; project_id?: string }, render: (row: ConversationRow) => U) =>
  listReachable(c, conversations, { ...q, prefix: "cnv", filters: [q.project_id ? eq(conversations.projectId, q.project_id) : undefined] }, render);

export async function createConversation(c: Context<AppEnv>, body: ConversationFields & { project_id: string }): Promise<ConversationRow> {
  const projectId = await requireProject(c, body.project_id);
  const now = new Date().toISOString();
  const row: ConversationRow = {
    id: newId("cnv"),
    tenantId: c.var.tenant.id,
    projectId,
    title: body.title ?? null,
    systemPrompt: body.system_prompt ?? null,
    model: body.model ?? DEFAULT_CHAT_MODEL,
    retentionDays: body.retention_days ?? null,
    messageCount: 0,
    lastActivityAt: null,
    knowledgeBaseIds: await requireBases(c, body.knowledge_base_ids ?? [], projectId),
    personaId: body.persona_id ? await requirePersona(c, body.persona_id, projectId) : null,
    createdBy: c.var.principal.userId,
    createdAt: now,
    updatedAt: now,
  };
  // The room first: if the row write then fails, an unreachable configured room is all that is left.
  await room(c, row.id).configure(await roomConfig(c, row));
  const db = c.var.db;
  await db.batch([
    db.insert(conversations).values(row),
    eventAfterChange(db, { tenantId: row.tenantId, type: "conversation.created", subjectType: "conversation", subjectId: row.id, data: conversationSummary(row) }),
    auditChange(c, { action: "conversation.created", resourceType: "conversation", resourceId: row.id, details: { project_id: projectId } }),
  ]);
  return row;
}

export async function updateConversation(c: Context<AppEnv>, id: string, body: ConversationFields): Promise<ConversationRow> {
  const current = await findConversation(c, id);
  const next: ConversationRow = {
    ...current,
    ...(body.title !== undefined && { title: body.title }),
    ...(body.system_prompt !== undefined && { systemPrompt: body.system_prompt }),
    ...(body.model !== undefined && { model: body.model }),
    ...(body.retention_days !== undefined && { retentionDays: body.retention_days }),
    ...(body.knowledge_base_ids !== undefined && { knowledgeBaseIds: await requireBases(c, body.knowledge_base_ids, current.projectId) }),
    ...(body.persona_id !== undefined && { personaId: body.persona_id && (await requirePersona(c, body.persona_id, current.projectId)) }),
    updatedAt: new Date().toISOString(),
  };
  await room(c, id).configure(await roomConfig(c, next));
  const db = c.var.db;
  await db.batch([
    db
      .update(conversations)
      .set({ title: next.title, systemPrompt: next.systemPrompt, model: next.model, retentionDays: next.retentionDays, knowledgeBaseIds: next.knowledgeBaseIds, personaId: next.personaId, updatedAt: next.updatedAt })
      .where(isConversation(c, id)),
    eventAfterChange(db, { tenantId: next.tenantId, type: "conversation.updated", subjectType: "conversation", subjectId: id, data: conversationSummary(next) }),
    auditChange(c, { action: "conversation.updated", resourceType: "conversation", resourceId: id, details: { fields: Object.keys(body) } }),
  ]);
  return next;
}

export async function deleteConversation(c: Context<AppEnv>, id: string): Promise<void> {
  const current = await findConversation(c, id);
  // The log first: a retry after a failure below finds the row and finishes the job.
  await room(c, id).destroy();
  const db = c.var.db;
  await db.batch([
    db.delete(conversations).where(isConversation(c, id)),
    eventAfterChange(db, { tenantId: current.tenantId, type: "conversation.deleted", subjectType: "conversation", subjectId: id, data: conversationSummary(current) }),
    auditChange(c, { action: "conversation.deleted", resourceType: "conversation", resourceId: id }),
  ]);
}

/** A page of the conversation's messages after `after`, and the last seq it has. */
export async function conversationHistory(c: Context<AppEnv>, id: string, after: number, limit: number) {
  const conversation = await findConversation(c, id);
  const data = await room(c, id).history(after, limit);
  return { data, last_seq: Math.max(conversation.messageCount, data.at(-1)?.seq ?? 0) };
}

/** Posts a message as the caller (and asks for a reply, streamed as events if `stream`). */
export async function postMessage(c: Context<AppEnv>, id: string, body: { content: string; client_id?: string; reply?: boolean }, stream: boolean) {
  await findConversation(c, id);
  const p = c.var.principal;
  const author = { userId: p.userId, ...(p.kind === "api_key" && { apiKeyId: p.keyId }) };
  const sent = await room(c, id).send(author, body.content, { clientId: body.client_id, reply: body.reply, stream, monthlyTokens: c.var.plan.monthlyTokens });
  if (!sent.ok) throw sent.code === "TENANT_SUSPENDED" ? new ApiError("TENANT_SUSPENDED", sent.detail) : quotaExceeded(sent.detail);
  return sent;
}

/** Brings the conversation's row up to its room's log: message count and last activity, never backwards (writes may land out of order). */
export function touchConversation(db: TenantDb, c: { tenantId: string; conversationId: string }, lastSeq: number, at: Date) {
  return db
    .update(conversations)
    .set({
      messageCount: sql`MAX(${conversations.messageCount}, ${lastSeq})`,
      lastActivityAt: sql`MAX(COALESCE(${conversations.lastActivityAt}, ''), ${at.toISOString()})`,
    })
    .where(and(eq(conversations.tenantId, c.tenantId), eq(conversations.id, c.conversationId)));
}
