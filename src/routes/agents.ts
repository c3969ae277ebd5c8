import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, lt } from "drizzle-orm";
import type { Context } from "hono";
import type { AppEnv } from "../context";
import { actorOf, auditAfterChange, type AuditEntry } from "../db/audit";
import { tenantDb, type TenantDb } from "../db/router";
import { agents, prompts } from "../db/tenant/schema";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { decodeCursor, page, PageQuery } from "../lib/pagination";
import { DEFAULT_CHAT_MODEL } from "../providers/ai";
import { atLeastOneOf, errors, guarded, jsonBody, jsonResponse, Model, NonBlank, pageOf, PromptKey, router } from "./openapi";
import { requireProject } from "../projects/store";

const JSON_SCHEMA_BYTES = 16 * 1024;

/** A tool the model may call, declared as a JSON Schema of its arguments. */
const Tool = z
  .object({
    name: z.string().regex(/^[A-Za-z_][\w-]{0,63}$/, "letters, digits, _ and -, starting with a letter or _"),
    description: z.string().max(1000).default(""),
    parameters: z
      .object({ type: z.literal("object"), properties: z.record(z.string(), z.record(z.string(), z.unknown())).optional() })
      .catchall(z.unknown())
      .refine((s) => JSON.stringify(s).length <= JSON_SCHEMA_BYTES, `at most ${JSON_SCHEMA_BYTES} bytes of JSON`)
      .openapi({ description: "A JSON Schema with type object: the tool's arguments" }),
  })
  .openapi("Tool");

const Tools = z
  .array(Tool)
  .max(32)
  .refine((tools) => new Set(tools.map((t) => t.name)).size === tools.length, "tool names must be unique");

const AgentSchema = z
  .object({
    id: z.string(),
    project_id: z.string(),
    name: z.string(),
    model: z.string(),
    system_prompt: z.string().nullable(),
    temperature: z.number().nullable(),
    max_tokens: z.number().int(),
    tools: z.array(Tool),
    prompt_key: z.string().nullable(),
    created_by: z.string(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("Agent");

const Name = NonBlank(200);
const SystemPrompt = z.string().max(20_000);
const Temperature = z.number().min(0).max(2);
export const MAX_RUN_TOKENS = 4096;
const MaxTokens = z.number().int().min(1).max(MAX_RUN_TOKENS);
const DEFAULT_MAX_TOKENS = 1024;
const IdParam = z.object({ id: z.string().min(1).max(64) });

const AgentFields = {
  name: Name,
  model: Model.optional(),
  system_prompt: SystemPrompt.nullable().optional(),
  temperature: Temperature.nullable().optional(),
  max_tokens: MaxTokens.optional(),
  tools: Tools.optional(),
  prompt_key: PromptKey.nullable().optional().openapi({ description: "The prompt whose versions this agent's runs render" }),
};

const createAgent = createRoute({
  method: "post",
  path: "/v1/agents",
  tags: ["Agents"],
  summary: "Create an agent in a project",
  ...guarded("agents:write"),
  request: { body: jsonBody(z.object({ project_id: z.string().min(1).max(64), ...AgentFields }).openapi("CreateAgent")) },
  responses: { 201: jsonResponse(AgentSchema, "The agent"), ...errors(400, 401, 403, 404, 415) },
});

const listAgents = createRoute({
  method: "get",
  path: "/v1/agents",
  tags: ["Agents"],
  summary: "List agents, newest first",
  ...guarded("agents:read"),
  request: { query: PageQuery.extend({ project_id: z.string().min(1).max(64).optional() }) },
  responses: { 200: jsonResponse(pageOf(AgentSchema), "A page of agents"), ...errors(400, 401, 403) },
});

const getAgent = createRoute({
  method: "get",
  path: "/v1/agents/{id}",
  tags: ["Agents"],
  summary: "Get an agent",
  ...guarded("agents:read"),
  request: { params: IdParam },
  responses: { 200: jsonResponse(AgentSchema, "The agent"), ...errors(401, 403, 404) },
});

const updateAgent = createRoute({
  method: "patch",
  path: "/v1/agents/{id}",
  tags: ["Agents"],
  summary: "Change an agent (runs already queued keep the settings they were created with)",
  ...guarded("agents:write"),
  request: {
    params: IdParam,
    body: jsonBody(
      z
        .object({ ...AgentFields, name: Name.optional() })
        .refine((b) => Object.keys(b).length > 0, "give at least one field")
        .openapi("UpdateAgent", atLeastOneOf({ ...AgentFields, name: Name })),
    ),
  },
  responses: { 200: jsonResponse(AgentSchema, "The agent"), ...errors(400, 401, 403, 404, 415) },
});

const deleteAgent = createRoute({
  method: "delete",
  path: "/v1/agents/{id}",
  tags: ["Agents"],
  summary: "Delete an agent (its runs stay)",
  ...guarded("agents:write"),
  request: { params: IdParam },
  responses: { 204: { description: "Deleted" }, ...errors(401, 403, 404) },
});

type AgentRow = typeof agents.$inferSelect;

const render = (r: AgentRow): z.infer<typeof AgentSchema> => ({
  id: r.id,
  project_id: r.projectId,
  name: r.name,
  model: r.model,
  system_prompt: r.systemPrompt,
  temperature: r.temperature,
  max_tokens: r.maxTokens,
  tools: JSON.parse(r.tools) as z.infer<typeof Tool>[],
  prompt_key: r.promptKey,
  created_by: r.createdBy,
  created_at: r.createdAt,
  updated_at: r.updatedAt,
});

/** An agent of this tenant, or 404. */
async function findAgent(c: Context<AppEnv>, id: string): Promise<AgentRow> {
  const tenant = c.var.tenant;
  const row = await c.var.db
    .select()
    .from(agents)
    .where(and(eq(agents.id, id), eq(agents.tenantId, tenant.id)))
    .get();
  if (!row) throw new ApiError("NOT_FOUND", `No agent ${id}`);
  return row;
}

async function requirePrompt(c: Context<AppEnv>, key: string): Promise<void> {
  const tenant = c.var.tenant;
  const row = await c.var.db
    .select({ key: prompts.key })
    .from(prompts)
    .where(and(eq(prompts.tenantId, tenant.id), eq(prompts.key, key)))
    .get();
  if (!row) throw new ApiError("NOT_FOUND", `No prompt ${key}`, { errors: [{ in: "body", field: "prompt_key", message: "no such prompt" }] });
}

const audit = (c: Context<AppEnv>, db: TenantDb, entry: Omit<AuditEntry, "resourceType">) =>
  auditAfterChange(db, c.var.tenant.id, actorOf(c.var.principal), c.var.requestId, { ...entry, resourceType: "agent" });

/** Agents: a model, its instructions and tools, and the prompt its runs use. */
export const agentRoutes = router()
  .openapi(createAgent, async (c) => {
    const body = c.req.valid("json");
    const tenant = c.var.tenant;
    const projectId = await requireProject(c, body.project_id);
    if (body.prompt_key) await requirePrompt(c, body.prompt_key);
    const now = new Date().toISOString();
    const row: AgentRow = {
      id: newId("agt"),
      tenantId: tenant.id,
      projectId,
      name: body.name,
      model: body.model ?? DEFAULT_CHAT_MODEL,
      systemPrompt: body.system_prompt ?? null,
      temperature: body.temperature ?? null,
      maxTokens: body.max_tokens ?? DEFAULT_MAX_TOKENS,
      tools: JSON.stringify(body.tools ?? []),
      promptKey: body.prompt_key ?? null,
      createdBy: c.var.principal.userId,
      createdAt: now,
      updatedAt: now,
    };
    const db = c.var.db;
    await db.batch([db.insert(agents).values(row), audit(c, db, { action: "agent.created", resourceId: row.id, details: { project_id: projectId, name: row.name } })]);
    return c.json(render(row), 201);
  })
  .openapi(listAgents, async (c) => {
    const q = c.req.valid("query");
    const tenant = c.var.tenant;
    const rows = await c.var.db
      .select()
      .from(agents)
      .where(
        and(
          eq(agents.tenantId, tenant.id),
          q.project_id ? eq(agents.projectId, q.project_id) : undefined,
          q.cursor ? lt(agents.id, decodeCursor(q.cursor, "agt")) : undefined,
        ),
      )
      .orderBy(desc(agents.id))
      .limit(q.limit + 1);
    return c.json(page(rows, q.limit, render), 200);
  })
  .openapi(getAgent, async (c) => c.json(render(await findAgent(c, c.req.valid("param").id)), 200))
  .openapi(updateAgent, async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const tenant = c.var.tenant;
    if (body.prompt_key) await requirePrompt(c, body.prompt_key);
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
          updatedAt: new Date().toISOString(),
        })
        .where(and(eq(agents.id, id), eq(agents.tenantId, tenant.id)))
        .returning(),
      audit(c, db, { action: "agent.updated", resourceId: id, details: { fields: Object.keys(body) } }),
    ]);
    if (!rows[0]) throw new ApiError("NOT_FOUND", `No agent ${id}`);
    return c.json(render(rows[0]), 200);
  })
  .openapi(deleteAgent, async (c) => {
    const { id } = c.req.valid("param");
    const tenant = c.var.tenant;
    const db = c.var.db;
    const [deleted] = await db.batch([
      db.delete(agents).where(and(eq(agents.id, id), eq(agents.tenantId, tenant.id))).returning({ id: agents.id }),
      audit(c, db, { action: "agent.deleted", resourceId: id }),
    ]);
    if (!deleted[0]) throw new ApiError("NOT_FOUND", `No agent ${id}`);
    return c.body(null, 204);
  });
