import { and, eq } from "drizzle-orm";
import type { Context } from "hono";
import { withinReach } from "../auth/reach";
import type { AppEnv } from "../context";
import { auditChange } from "../db/audit";
import { findReachable, listReachable } from "../db/owned";
import { agents, prompts } from "../db/tenant/schema";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { requireBases } from "../knowledge/bases";
import { requirePersona } from "../content/personas";
import { requireProject } from "../projects/store";
import { DEFAULT_CHAT_MODEL } from "../providers/ai";

export type AgentRow = typeof agents.$inferSelect;

/** The most tokens an agent's reply may write unless it says otherwise. */
export const DEFAULT_MAX_TOKENS = 1024;

/** An agent's settings as the API takes them; absent ones keep their default (create) or value (update). */
export interface AgentFields {
  name?: string;
  model?: string;
  system_prompt?: string | null;
  temperature?: number | null;
  max_tokens?: number;
  tools?: unknown[];
  prompt_key?: string | null;
  knowledge_base_ids?: string[];
  persona_id?: string | null;
}

const isAgent = (c: Context<AppEnv>, id: string) => and(eq(agents.id, id), eq(agents.tenantId, c.var.tenant.id), withinReach(c, agents.projectId));

export const findAgent = (c: Context<AppEnv>, id: string) => findReachable(c, agents, id, "agent");

export const listAgents = <U>(c: Context<AppEnv>, q: { limit: number; cursor?: string; project_id?: string }, render: (row: AgentRow) => U) =>
  listReachable(c, agents, { ...q, prefix: "agt", filters: [q.project_id ? eq(agents.projectId, q.project_id) : undefined] }, render);

/** A prompt an agent names must exist in this tenant: 404 naming `prompt_key` otherwise. */
async function requirePrompt(c: Context<AppEnv>, key: string): Promise<void> {
  const row = await c.var.db
    .select({ key: prompts.key })
    .from(prompts)
    .where(and(eq(prompts.tenantId, c.var.tenant.id), eq(prompts.key, key)))
    .get();
  if (!row) throw new ApiError("NOT_FOUND", `No prompt ${key}`, { errors: [{ in: "body", field: "prompt_key", message: "no such prompt" }] });
}

export async function createAgent(c: Context<AppEnv>, body: AgentFields & { project_id: string; name: string }): Promise<AgentRow> {
  const projectId = await requireProject(c, body.project_id);
  if (body.prompt_key) await requirePrompt(c, body.prompt_key);
  const now = new Date().toISOString();
  const row: AgentRow = {
    id: newId("agt"),
    tenantId: c.var.tenant.id,
    projectId,
    name: body.name,
    model: body.model ?? DEFAULT_CHAT_MODEL,
    systemPrompt: body.system_prompt ?? null,
    temperature: body.temperature ?? null,
    maxTokens: body.max_tokens ?? DEFAULT_MAX_TOKENS,
    tools: JSON.stringify(body.tools ?? []),
    promptKey: body.prompt_key ?? null,
    knowledgeBaseIds: await requireBases(c, body.knowledge_base_ids ?? [], projectId),
    personaId: body.persona_id ? await requirePersona(c, body.persona_id, projectId) : null,
    createdBy: c.var.principal.userId,
    createdAt: now,
    updatedAt: now,
  };
  const db = c.var.db;
  await db.batch([
    db.insert(agents).values(row),
    auditChange(c, { action: "agent.created", resourceType: "agent", resourceId: row.id, details: { project_id: projectId, name: row.name } }),
  ]);
  return row;
}

export async function updateAgent(c: Context<AppEnv>, id: string, body: AgentFields): Promise<AgentRow> {
  if (body.prompt_key) await requirePrompt(c, body.prompt_key);
  const projectId = body.knowledge_base_ids || body.persona_id ? (await findReachable(c, agents, id, "agent")).projectId : "";
  const knowledgeBaseIds = body.knowledge_base_ids && (await requireBases(c, body.knowledge_base_ids, projectId));
  if (body.persona_id) await requirePersona(c, body.persona_id, projectId);
  const db = c.var.db;
  const [rows] = await db.batch([
    db
      .update(agents)
      .set({
        ...(body.name !== undefined && { name: body.name }),
        ...(body.model !== undefined && { model: body.model }),
        ...(body.system_prompt !== undefined && { systemPrompt: body.system_prompt }),
        ...(body.temperature !== undefined && { temperature: body.temperature }),
        ...(body.max_tokens !== undefined && { maxTokens: body.max_tokens }),
        ...(body.tools !== undefined && { tools: JSON.stringify(body.tools) }),
        ...(body.prompt_key !== undefined && { promptKey: body.prompt_key }),
        ...(knowledgeBaseIds !== undefined && { knowledgeBaseIds }),
        ...(body.persona_id !== undefined && { personaId: body.persona_id }),
        updatedAt: new Date().toISOString(),
      })
      .where(isAgent(c, id))
      .returning(),
    auditChange(c, { action: "agent.updated", resourceType: "agent", resourceId: id, details: { fields: Object.keys(body) } }),
  ]);
  if (!rows[0]) throw new ApiError("NOT_FOUND", `No agent ${id}`);
  return rows[0];
}

export async function deleteAgent(c: Context<AppEnv>, id: string): Promise<void> {
  const db = c.var.db;
  const [deleted] = await db.batch([
    db.delete(agents).where(isAgent(c, id)).returning({ id: agents.id }),
    auditChange(c, { action: "agent.deleted", resourceType: "agent", resourceId: id }),
  ]);
  if (!deleted[0]) throw new ApiError("NOT_FOUND", `No agent ${id}`);
}
