import { and, asc, eq, sql } from "drizzle-orm";
import { reaches } from "../auth/reach";
import type { BatchResponse } from "drizzle-orm/batch";
import type { Context } from "hono";
import type { AppEnv } from "../context";
import { auditChange } from "../db/audit";
import { latestPersona, noPersonaIn, personaPrompt } from "../content/personas";
import { isUniqueViolation } from "../db/constraints";
import { eventAfterChange } from "../db/outbox";
import { findReachable, listReachable } from "../db/owned";
import { monthOf, quotaExceeded, quotaRow } from "../db/quota";
import { insertWhere } from "../db/insert-where";
import { agents, projects, promptVersions, type RUN_STATUSES, runs, tokenQuota } from "../db/tenant/schema";
import { sha256Hex } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { errorFields } from "../lib/log";
import type { RunMessage } from "./consumer";
import { type AgentConfig, failRun, requestCancel, type RunRow, runSummary, type StructuredOutput } from "./store";
import { pickByWeight, renderTemplate } from "./template";

type PromptVersionRow = typeof promptVersions.$inferSelect;

/** A run as a client asks for it. */
export interface NewRun {
  agent_id: string;
  project_id: string;
  input: Record<string, string | number | boolean | null>;
  prompt_key?: string;
  prompt_version?: number;
}

/**
 * A run a feature of the platform sets up (campaign ideas): its own message and the structured
 * answer it must give, instead of the agent's prompt; `personaId` leads the system prompt instead of
 * the agent's persona.
 */
export interface RunTask {
  prompt: string;
  output: StructuredOutput;
  personaId?: string;
}

export const findRun = (c: Context<AppEnv>, id: string) => findReachable(c, runs, id, "run");

export const listRuns = <U>(
  c: Context<AppEnv>,
  q: { limit: number; cursor?: string; status?: (typeof RUN_STATUSES)[number]; agent_id?: string; project_id?: string },
  render: (row: RunRow) => U,
) =>
  listReachable(
    c,
    runs,
    {
      ...q,
      prefix: "run",
      filters: [q.status ? eq(runs.status, q.status) : undefined, q.agent_id ? eq(runs.agentId, q.agent_id) : undefined, q.project_id ? eq(runs.projectId, q.project_id) : undefined],
    },
    render,
  );

/** A PENDING run as createRun stores it, from what the request and its reads decided. */
function pendingRun(
  c: Context<AppEnv>,
  r: Pick<RunRow, "projectId" | "agentId" | "input" | "agentConfig" | "prompt" | "promptKey" | "promptVersion" | "model" | "idempotencyKey" | "requestHash">,
): RunRow {
  const p = c.var.principal;
  const now = new Date().toISOString();
  return {
    ...r,
    id: newId("run"),
    tenantId: c.var.tenant.id,
    status: "PENDING",
    output: null,
    errorCode: null,
    error: null,
    attempts: 0,
    leaseToken: null,
    leaseUntil: null,
    artifactId: newId("art"),
    provider: null,
    tokensIn: null,
    tokensOut: null,
    costMicros: null,
    latencyMs: null,
    citations: null,
    cancelRequestedAt: null,
    createdBy: p.userId,
    apiKeyId: p.kind === "api_key" ? p.keyId : null,
    createdAt: now,
    startedAt: null,
    finishedAt: null,
    updatedAt: now,
  };
}

/** The run's event and audit entry, each written only if the statement before it wrote. */
const createdRecords = (c: Context<AppEnv>, run: RunRow) =>
  [
    eventAfterChange(c.var.db, { tenantId: run.tenantId, type: "run.created", subjectType: "run", subjectId: run.id, data: runSummary(run) }),
    auditChange(c, { action: "run.created", resourceType: "run", resourceId: run.id, details: { agent_id: run.agentId } }),
  ] as const;

/**
 * The common run — its text given, on an agent without a prompt — as one conditional insert: the
 * agent (in that project, without a prompt), the project and the month's quota are checked by the
 * insert itself, and the agent's settings copied by it. Null when the request is not that shape.
 */
function directInsert(c: Context<AppEnv>, body: NewRun) {
  const text = body.input.text;
  if (body.prompt_key || body.prompt_version !== undefined || typeof text !== "string" || !text.trim()) return null;
  const { db, tenant, plan } = c.var;
  const run = pendingRun(c, {
    projectId: body.project_id,
    agentId: body.agent_id,
    input: JSON.stringify(body.input),
    agentConfig: "",
    prompt: text,
    promptKey: null,
    promptVersion: null,
    model: "",
    idempotencyKey: null,
    requestHash: null,
  });
  const agentConfig = sql`json_object('model', a.model, 'system_prompt', a.system_prompt, 'temperature', a.temperature, 'max_tokens', a.max_tokens, 'tools', json(a.tools), 'knowledge_base_ids', json(a.knowledge_base_ids))`;
  const fits = sql`a.id = ${body.agent_id} AND a.tenant_id = ${tenant.id} AND a.project_id = ${body.project_id} AND a.prompt_key IS NULL AND a.persona_id IS NULL
    AND EXISTS (SELECT 1 FROM ${projects} p WHERE p.id = ${body.project_id} AND p.tenant_id = ${tenant.id})
    AND COALESCE((SELECT q.used + q.reserved FROM ${tokenQuota} q WHERE q.tenant_id = ${tenant.id} AND q.month = ${monthOf(new Date())}), 0) < ${plan.monthlyTokens}`;
  return [insertWhere(db, runs, { ...run, agentConfig, model: sql`a.model` }, fits, sql`${agents} a`).returning(), ...createdRecords(c, run)] as const;
}

/**
 * Stores a PENDING run (with its event and audit entry) and queues it. With an Idempotency-Key,
 * the same key and body return the stored run again (`replayed`), queued again if still PENDING;
 * another body under the key is a 409.
 *
 * One round trip to the tenant's database: the common run is stored by a conditional insert, and
 * the same batch reads everything the full path needs (project, agent, prompt versions, quota) —
 * for a run with a prompt, or to say precisely what is wrong — which then stores it in a second.
 */
export async function createRun(c: Context<AppEnv>, body: NewRun, idempotencyKey: string | undefined, task?: RunTask): Promise<{ run: RunRow; replayed: boolean }> {
  // A project the caller is not assigned to does not exist for them (answered before any read, as the read would).
  if (!reaches(c, body.project_id)) throw new ApiError("NOT_FOUND", `No project ${body.project_id}`, { errors: [{ in: "body", field: "project_id", message: "no such project" }] });
  const tenant = c.var.tenant;
  const db = c.var.db;
  // Only a keyed request can be replayed, so only its body is hashed and looked up.
  const requestHash = idempotencyKey ? await sha256Hex(canonicalJson(body)) : null;
  const byKey = () => db.select().from(runs).where(and(eq(runs.tenantId, tenant.id), eq(runs.idempotencyKey, idempotencyKey!))).get();
  if (idempotencyKey) {
    const existing = await byKey();
    if (existing) return replay(c, existing, requestHash!);
  }
  const promptKey = body.prompt_key ? sql`${body.prompt_key}` : sql`(SELECT ${agents.promptKey} FROM ${agents} WHERE ${agents.id} = ${body.agent_id} AND ${agents.tenantId} = ${tenant.id})`;
  const reads = [
    db.select({ id: projects.id }).from(projects).where(and(eq(projects.id, body.project_id), eq(projects.tenantId, tenant.id))),
    db.select().from(agents).where(and(eq(agents.id, body.agent_id), eq(agents.tenantId, tenant.id))),
    db.select().from(promptVersions).where(and(eq(promptVersions.tenantId, tenant.id), sql`${promptVersions.promptKey} = ${promptKey}`)).orderBy(asc(promptVersions.version)),
    quotaRow(db, tenant.id),
  ] as const;
  const direct = idempotencyKey || task ? null : directInsert(c, body);
  let read: BatchResponse<typeof reads>;
  if (direct) {
    const [inserted, , , ...rest] = await db.batch([...direct, ...reads]);
    if (inserted[0]) {
      await enqueue(c, inserted[0]);
      return { run: inserted[0], replayed: false };
    }
    read = rest;
  } else {
    read = await db.batch(reads);
  }
  const [projectRows, agentRows, versions, quotaRows] = read;
  if (!projectRows[0]) throw new ApiError("NOT_FOUND", `No project ${body.project_id}`, { errors: [{ in: "body", field: "project_id", message: "no such project" }] });
  const projectId = projectRows[0].id;
  const agent = agentRows[0];
  if (!agent) throw new ApiError("NOT_FOUND", `No agent ${body.agent_id}`, { errors: [{ in: "body", field: "agent_id", message: "no such agent" }] });
  if (agent.projectId !== projectId) {
    throw new ApiError("VALIDATION_FAILED", `Agent ${agent.id} belongs to project ${agent.projectId}, not ${projectId}`, {
      errors: [{ in: "body", field: "agent_id", message: "belongs to another project" }],
    });
  }
  const prompt = task ? { text: task.prompt, key: null, version: null } : promptFor(body.prompt_key ?? agent.promptKey, versions, body.prompt_version, body.input);
  const plan = c.var.plan;
  const quota = quotaRows[0] ?? { used: 0, reserved: 0 };
  if (quota.used + quota.reserved >= plan.monthlyTokens) {
    throw quotaExceeded(`This month's ${plan.monthlyTokens} tokens are used up; nothing was queued`);
  }
  // The system prompt in its documented order: the persona's latest version, then the agent's own.
  const personaId = task?.personaId ?? agent.personaId;
  const persona = personaId ? await latestPersona(c, personaId) : null;
  // A persona the request names (not the agent's, checked when it was set) must be of the run's project.
  if (task?.personaId && persona?.projectId !== projectId) throw noPersonaIn(task.personaId, projectId);
  const systemPrompt = [persona && personaPrompt(persona.name, persona.version), agent.systemPrompt].filter(Boolean).join("\n\n") || null;
  const config: AgentConfig = {
    model: agent.model,
    system_prompt: systemPrompt,
    ...(persona && { persona: { id: persona.id, version: persona.version.version } }),
    temperature: agent.temperature,
    // A structured answer has room for all it must hold, whatever the agent's usual replies need.
    max_tokens: task ? Math.max(agent.maxTokens, Math.min(MAX_STRUCTURED_TOKENS, STRUCTURED_TOKENS_PER_ITEM * task.output.count)) : agent.maxTokens,
    tools: JSON.parse(agent.tools) as AgentConfig["tools"],
    knowledge_base_ids: JSON.parse(agent.knowledgeBaseIds) as string[],
    // A structured answer is also held to the persona's banned words.
    ...(task && { output: { ...task.output, ...(persona && { banned_words: JSON.parse(persona.version.bannedWords) as string[] }) } }),
  };
  const run = pendingRun(c, {
    projectId,
    agentId: agent.id,
    input: JSON.stringify(body.input),
    agentConfig: JSON.stringify(config),
    prompt: prompt.text,
    promptKey: prompt.key,
    promptVersion: prompt.version,
    model: config.model,
    idempotencyKey: idempotencyKey ?? null,
    requestHash,
  });
  try {
    await db.batch([db.insert(runs).values(run), ...createdRecords(c, run)]);
  } catch (err) {
    // Two requests with one key at once: the unique index let one in; answer the other as a replay.
    if (idempotencyKey && isUniqueViolation(err, runs, ["tenantId", "idempotencyKey"])) {
      const existing = await byKey();
      if (existing) return replay(c, existing, requestHash!);
    }
    throw err;
  }
  await enqueue(c, run);
  return { run, replayed: false };
}

/** A client's cancel: see `requestCancel`. A finished run is a 409. */
export async function cancelRun(c: Context<AppEnv>, id: string): Promise<RunRow> {
  const run = await findRun(c, id);
  const after = await requestCancel(c.var.db, run);
  if (!after) throw new ApiError("RUN_FINISHED", `Run ${id} has already finished (${(await findRun(c, id)).status})`);
  const action = after.status === "CANCELED" ? "run.canceled" : "run.cancel_requested";
  await auditChange(c, { action, resourceType: "run", resourceId: id }).run();
  return after;
}

/** JSON with object keys sorted, so equal bodies hash equal whatever order their keys came in. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * Queues a run's message; a run already executed or executing is protected by its claim, so
 * sending twice is safe. If the queue refuses, a run with an Idempotency-Key stays PENDING for the
 * client's retry (which queues it again); one without is failed, so nothing waits forever unqueued.
 */
async function enqueue(c: Context<AppEnv>, run: RunRow): Promise<void> {
  const body: RunMessage = { v: 1, tenant_id: run.tenantId, run_id: run.id };
  try {
    await c.env.RUNS_QUEUE.send(body, { contentType: "json" });
  } catch (err) {
    c.var.log.error("run.enqueue_failed", { ...errorFields(err), run_id: run.id });
    if (!run.idempotencyKey) {
      await failRun(c.var.db, run, sql`${runs.status} = 'PENDING'`, "not_queued", "The run could not be queued");
      throw new ApiError("QUEUE_UNAVAILABLE", `Run ${run.id} could not be queued and was marked FAILED; try again (with an Idempotency-Key, a retry is safe)`, {
        headers: { "retry-after": "5" },
      });
    }
    throw new ApiError("QUEUE_UNAVAILABLE", `Run ${run.id} is stored but could not be queued; repeat the request with the same Idempotency-Key to queue it`, {
      headers: { "retry-after": "5" },
    });
  }
}

/** An idempotent replay: the same body gets the same run (queued again if still PENDING); another body is a conflict. */
async function replay(c: Context<AppEnv>, existing: RunRow, requestHash: string): Promise<{ run: RunRow; replayed: boolean }> {
  if (existing.requestHash !== requestHash) {
    throw new ApiError("IDEMPOTENCY_KEY_REUSED", `Idempotency-Key was used for run ${existing.id} with a different body`, {
      errors: [{ in: "header", field: "idempotency-key", message: "already used with another body" }],
    });
  }
  if (existing.status === "PENDING") await enqueue(c, existing);
  return { run: existing, replayed: true };
}

/** Output tokens a structured run may spend per item it must answer (an idea: title, angle and a draft). */
const STRUCTURED_TOKENS_PER_ITEM = 600;
const MAX_STRUCTURED_TOKENS = 8192;

/** The longest prompt a run sends the model (about 50,000 tokens), checked before anything is stored. */
export const MAX_PROMPT_CHARS = 200_000;

const promptTooLong = (field: string, length: number) =>
  new ApiError("VALIDATION_FAILED", `The rendered prompt would be ${length} characters; the limit is ${MAX_PROMPT_CHARS}`, {
    errors: [{ in: "body", field, message: `renders a prompt of ${length} characters, over the limit of ${MAX_PROMPT_CHARS}` }],
  });

/** What the run will send the model: a prompt version rendered with the input, or `input.text`. */
function promptFor(key: string | null, versions: PromptVersionRow[], pinned: number | undefined, input: Record<string, unknown>) {
  if (!key) {
    if (typeof input.text !== "string" || !input.text.trim()) {
      throw new ApiError("VALIDATION_FAILED", "Without a prompt, input.text is the message sent to the model", {
        errors: [{ in: "body", field: "input.text", message: "required (a non-empty string) when the run has no prompt" }],
      });
    }
    return { text: input.text, key: null, version: null };
  }
  if (!versions.length) throw new ApiError("NOT_FOUND", `No prompt ${key}`, { errors: [{ in: "body", field: "prompt_key", message: "no such prompt" }] });
  const chosen = pinned === undefined ? pickByWeight(versions, Math.random()) : versions.find((v) => v.version === pinned);
  if (!chosen) {
    throw pinned === undefined
      ? new ApiError("VALIDATION_FAILED", `No version of prompt ${key} has traffic weight; pin prompt_version or set weights`, { errors: [{ in: "body", field: "prompt_key", message: "no version has weight" }] })
      : new ApiError("NOT_FOUND", `Prompt ${key} has no version ${pinned}`, { errors: [{ in: "body", field: "prompt_version", message: "no such version" }] });
  }
  const rendered = renderTemplate(chosen.template, input, MAX_PROMPT_CHARS);
  if (!rendered.ok && "tooLong" in rendered) throw promptTooLong("input", rendered.tooLong);
  if (!rendered.ok) {
    throw new ApiError("VALIDATION_FAILED", `Prompt ${key} v${chosen.version} needs ${rendered.missing.join(", ")}`, {
      errors: rendered.missing.map((name) => ({ in: "body", field: `input.${name}`, message: "the prompt uses this variable" })),
    });
  }
  return { text: rendered.text, key, version: chosen.version };
}

