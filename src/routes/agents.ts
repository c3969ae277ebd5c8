import { createRoute, z } from "@hono/zod-openapi";
import * as agents from "../agents/store";
import { PageQuery } from "../lib/pagination";
import { atLeastOneOf, errors, guarded, jsonBody, jsonResponse, KnowledgeBaseIds, Model, NonBlank, pageOf, PromptKey, router } from "./openapi";

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
    knowledge_base_ids: z.array(z.string()),
    persona_id: z.string().nullable(),
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
const IdParam = z.object({ id: z.string().min(1).max(64) });

const AgentFields = {
  name: Name,
  model: Model.optional(),
  system_prompt: SystemPrompt.nullable().optional(),
  temperature: Temperature.nullable().optional(),
  max_tokens: MaxTokens.optional(),
  tools: Tools.optional(),
  prompt_key: PromptKey.nullable().optional().openapi({ description: "The prompt whose versions this agent's runs render" }),
  knowledge_base_ids: KnowledgeBaseIds.optional(),
  persona_id: z.string().min(1).max(64).nullable().optional().openapi({ description: "A brand persona of the project: its latest version leads the system prompt (persona, then agent)" }),
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


const render = (r: agents.AgentRow): z.infer<typeof AgentSchema> => ({
  id: r.id,
  project_id: r.projectId,
  name: r.name,
  model: r.model,
  system_prompt: r.systemPrompt,
  temperature: r.temperature,
  max_tokens: r.maxTokens,
  tools: JSON.parse(r.tools) as z.infer<typeof Tool>[],
  prompt_key: r.promptKey,
  knowledge_base_ids: JSON.parse(r.knowledgeBaseIds) as string[],
  persona_id: r.personaId,
  created_by: r.createdBy,
  created_at: r.createdAt,
  updated_at: r.updatedAt,
});

/** Agents: a model, its instructions and tools, and the prompt its runs use. */
export const agentRoutes = router()
  .openapi(createAgent, async (c) => c.json(render(await agents.createAgent(c, c.req.valid("json"))), 201))
  .openapi(listAgents, async (c) => c.json(await agents.listAgents(c, c.req.valid("query"), render), 200))
  .openapi(getAgent, async (c) => c.json(render(await agents.findAgent(c, c.req.valid("param").id)), 200))
  .openapi(updateAgent, async (c) => c.json(render(await agents.updateAgent(c, c.req.valid("param").id, c.req.valid("json"))), 200))
  .openapi(deleteAgent, async (c) => {
    await agents.deleteAgent(c, c.req.valid("param").id);
    return c.body(null, 204);
  });
