import { createRoute, z } from "@hono/zod-openapi";
import { and, asc, desc, eq, gt, lt, sql } from "drizzle-orm";
import type { Context } from "hono";
import type { AppEnv } from "../context";
import { actorOf, auditAfterChange } from "../db/audit";
import { eventAfterChange } from "../db/outbox";
import { quotaExceeded, quotaRow } from "../db/quota";
import { tenantDb } from "../db/router";
import { agents, outbox, projects, promptVersions, RUN_STATUSES, runs } from "../db/tenant/schema";

type PromptVersionRow = typeof promptVersions.$inferSelect;
import { sha256Hex } from "../lib/crypto";
import { ApiError, errorText } from "../lib/errors";
import { newId } from "../lib/ids";
import { errorFields } from "../lib/log";
import { decodeCursor, page, PageQuery } from "../lib/pagination";
import type { RunMessage } from "../runs/consumer";
import { type AgentConfig, failRun, isFinished, requestCancel, type RunRow, runSummary } from "../runs/store";
import { pickByWeight, renderTemplate } from "../runs/template";
import { openStream } from "../limits/streams";
import { errors, guarded, jsonBody, jsonResponse, pageOf, PromptKey, router, schema31 } from "./openapi";

const INPUT_BYTES = 64 * 1024;

const RunSchema = z
  .object({
    id: z.string(),
    project_id: z.string(),
    agent_id: z.string(),
    status: z.enum(RUN_STATUSES),
    input: z.record(z.string(), z.unknown()),
    prompt: z.object({ key: z.string(), version: z.number().int() }).nullable().openapi({ description: "The prompt version this run rendered" }),
    output: z.string().nullable(),
    error: z.object({ code: z.string(), message: z.string().nullable() }).nullable(),
    attempts: z.number().int(),
    artifact_id: z.string().nullable().openapi({ description: "The artifact holding the output, once SUCCEEDED" }),
    usage: z
      .object({ model: z.string().nullable(), provider: z.string().nullable(), tokens_in: z.number().int().nullable(), tokens_out: z.number().int().nullable(), cost_micros: z.number().int().nullable() })
      .nullable(),
    latency_ms: z.number().int().nullable(),
    cancel_requested_at: z.string().nullable(),
    created_by: z.string(),
    created_at: z.string(),
    started_at: z.string().nullable(),
    finished_at: z.string().nullable(),
    updated_at: z.string(),
  })
  .openapi("Run");

const InputValue = z.union([z.string().max(32_000), z.number(), z.boolean(), z.null()]);
const Input = z
  .record(z.string().min(1).max(100), InputValue)
  .refine((v) => JSON.stringify(v).length <= INPUT_BYTES, `at most ${INPUT_BYTES} bytes of JSON`)
  .openapi({
    description: `The prompt's {{variables}}; without a prompt, \`text\` is the message sent to the model. At most ${INPUT_BYTES} bytes of JSON.`,
    example: { topic: "edge computing" },
    ...schema31({ propertyNames: { minLength: 1, maxLength: 100 } }),
  });

const CreateRun = z
  .object({
    agent_id: z.string().min(1).max(64),
    project_id: z.string().min(1).max(64),
    input: Input,
    prompt_key: PromptKey.optional().openapi({ description: "Use this prompt instead of the agent's" }),
    prompt_version: z.number().int().min(1).optional().openapi({ description: "Pin a version instead of the traffic weights" }),
  })
  .openapi("CreateRun");

const IdempotencyKey = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[\x21-\x7e]+$/, "printable ASCII without spaces")
  .optional()
  .openapi({ description: "Repeat a POST with the same key and body to get the same run back, never a second one" });

const IdParam = z.object({ id: z.string().min(1).max(64) });

const createRun = createRoute({
  method: "post",
  path: "/v1/runs",
  tags: ["Runs"],
  summary: "Queue a run of an agent",
  description:
    "Answers 202 with the run PENDING; the runs queue executes it. With an Idempotency-Key, the same key and body return the same run (header Idempotent-Replayed: true) and another body is 409.",
  ...guarded("runs:write"),
  request: { headers: z.object({ "idempotency-key": IdempotencyKey }), body: jsonBody(CreateRun) },
  responses: { 202: jsonResponse(RunSchema, "The queued run"), ...errors(400, 401, 403, 404, 409, 415, 429, 503) },
});

const listRuns = createRoute({
  method: "get",
  path: "/v1/runs",
  tags: ["Runs"],
  summary: "List runs, newest first",
  ...guarded("runs:read"),
  request: {
    query: PageQuery.extend({
      status: z.enum(RUN_STATUSES).optional(),
      agent_id: z.string().min(1).max(64).optional(),
      project_id: z.string().min(1).max(64).optional(),
    }),
  },
  responses: { 200: jsonResponse(pageOf(RunSchema), "A page of runs"), ...errors(400, 401, 403) },
});

const getRun = createRoute({
  method: "get",
  path: "/v1/runs/{id}",
  tags: ["Runs"],
  summary: "Get a run",
  ...guarded("runs:read"),
  request: { params: IdParam },
  responses: { 200: jsonResponse(RunSchema, "The run"), ...errors(401, 403, 404) },
});

const cancelRun = createRoute({
  method: "post",
  path: "/v1/runs/{id}/cancel",
  tags: ["Runs"],
  summary: "Cancel a run",
  description:
    "A PENDING run is CANCELED at once (200). A RUNNING one is asked to stop (202, `cancel_requested_at` set): its model call is stopped within about a second and the run ends CANCELED with the output so far, billed. A finished run is 409.",
  ...guarded("runs:write"),
  request: { params: IdParam },
  responses: { 200: jsonResponse(RunSchema, "Canceled"), 202: jsonResponse(RunSchema, "Cancel requested; the run is stopping"), ...errors(401, 403, 404, 409) },
});

const runEvents = createRoute({
  method: "get",
  path: "/v1/runs/{id}/events",
  tags: ["Runs"],
  summary: "The run's status changes as server-sent events",
  description:
    "Every event so far (or after `Last-Event-ID`), then each new one as it happens: `run.created`, `run.started`, `run.retrying`, then `run.succeeded`, `run.failed` or `run.canceled`, after which the stream ends. Event ids are stable: reconnect with Last-Event-ID to resume.",
  ...guarded("runs:read", "connection"),
  request: { params: IdParam, headers: z.object({ "last-event-id": z.string().max(64).optional() }) },
  responses: { 200: { description: "text/event-stream", content: { "text/event-stream": { schema: z.string() } } }, ...errors(401, 403, 404) },
});

const render = (r: RunRow): z.infer<typeof RunSchema> => {
  const s = runSummary(r);
  return {
    ...s,
    input: JSON.parse(r.input) as Record<string, unknown>,
    output: r.output,
    cancel_requested_at: r.cancelRequestedAt,
    created_by: r.createdBy,
    created_at: r.createdAt,
    started_at: r.startedAt,
    finished_at: r.finishedAt,
    updated_at: r.updatedAt,
  };
};

async function findRun(c: Context<AppEnv>, id: string): Promise<RunRow> {
  const tenant = c.var.tenant;
  const row = await c.var.db
    .select()
    .from(runs)
    .where(and(eq(runs.id, id), eq(runs.tenantId, tenant.id)))
    .get();
  if (!row) throw new ApiError("NOT_FOUND", `No run ${id}`);
  return row;
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
async function replay(c: Context<AppEnv>, existing: RunRow, requestHash: string) {
  if (existing.requestHash !== requestHash) {
    throw new ApiError("IDEMPOTENCY_KEY_REUSED", `Idempotency-Key was used for run ${existing.id} with a different body`, {
      errors: [{ in: "header", field: "idempotency-key", message: "already used with another body" }],
    });
  }
  if (existing.status === "PENDING") await enqueue(c, existing);
  return c.json(render(existing), 202, { "idempotent-replayed": "true", location: `/v1/runs/${existing.id}` });
}

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

/** How often an events stream looks for new events: soon after the last one, then less often while nothing happens. */
const POLL_MS = { first: 250, max: 2000 };
const HEARTBEAT_MS = 15_000;
/** A stream ends after this long even if the run has not; the client resumes with Last-Event-ID. */
const STREAM_MAX_MS = 10 * 60 * 1000;

/** Runs: queued executions of agents. */
export const runRoutes = router()
  .openapi(createRun, async (c) => {
    const body = c.req.valid("json");
    const idempotencyKey = c.req.valid("header")["idempotency-key"];
    const tenant = c.var.tenant;
    const db = c.var.db;
    // Only a keyed request can be replayed, so only its body is hashed and looked up.
    const requestHash = idempotencyKey ? await sha256Hex(canonicalJson(body)) : null;
    const byKey = () => db.select().from(runs).where(and(eq(runs.tenantId, tenant.id), eq(runs.idempotencyKey, idempotencyKey!))).get();
    if (idempotencyKey) {
      const existing = await byKey();
      if (existing) return replay(c, existing, requestHash!);
    }
    // Everything the run needs to know, in one round trip: project, agent, prompt versions, quota.
    const promptKey = body.prompt_key ? sql`${body.prompt_key}` : sql`(SELECT ${agents.promptKey} FROM ${agents} WHERE ${agents.id} = ${body.agent_id} AND ${agents.tenantId} = ${tenant.id})`;
    const [projectRows, agentRows, versions, quotaRows] = await db.batch([
      db.select({ id: projects.id }).from(projects).where(and(eq(projects.id, body.project_id), eq(projects.tenantId, tenant.id))),
      db.select().from(agents).where(and(eq(agents.id, body.agent_id), eq(agents.tenantId, tenant.id))),
      db.select().from(promptVersions).where(and(eq(promptVersions.tenantId, tenant.id), sql`${promptVersions.promptKey} = ${promptKey}`)).orderBy(asc(promptVersions.version)),
      quotaRow(db, tenant.id),
    ]);
    if (!projectRows[0]) throw new ApiError("NOT_FOUND", `No project ${body.project_id}`, { errors: [{ in: "body", field: "project_id", message: "no such project" }] });
    const projectId = projectRows[0].id;
    const agent = agentRows[0];
    if (!agent) throw new ApiError("NOT_FOUND", `No agent ${body.agent_id}`, { errors: [{ in: "body", field: "agent_id", message: "no such agent" }] });
    if (agent.projectId !== projectId) {
      throw new ApiError("VALIDATION_FAILED", `Agent ${agent.id} belongs to project ${agent.projectId}, not ${projectId}`, {
        errors: [{ in: "body", field: "agent_id", message: "belongs to another project" }],
      });
    }
    const prompt = promptFor(body.prompt_key ?? agent.promptKey, versions, body.prompt_version, body.input);
    const plan = c.var.plan;
    const quota = quotaRows[0] ?? { used: 0, reserved: 0 };
    if (quota.used + quota.reserved >= plan.monthlyTokens) {
      throw quotaExceeded(`This month's ${plan.monthlyTokens} tokens are used up; nothing was queued`);
    }
    const config: AgentConfig = {
      model: agent.model,
      system_prompt: agent.systemPrompt,
      temperature: agent.temperature,
      max_tokens: agent.maxTokens,
      tools: JSON.parse(agent.tools) as AgentConfig["tools"],
    };
    const p = c.var.principal;
    const now = new Date().toISOString();
    const run: RunRow = {
      id: newId("run"),
      tenantId: tenant.id,
      projectId,
      agentId: agent.id,
      status: "PENDING",
      input: JSON.stringify(body.input),
      agentConfig: JSON.stringify(config),
      prompt: prompt.text,
      promptKey: prompt.key,
      promptVersion: prompt.version,
      output: null,
      errorCode: null,
      error: null,
      attempts: 0,
      leaseToken: null,
      leaseUntil: null,
      artifactId: newId("art"),
      model: config.model,
      provider: null,
      tokensIn: null,
      tokensOut: null,
      costMicros: null,
      latencyMs: null,
      cancelRequestedAt: null,
      idempotencyKey: idempotencyKey ?? null,
      requestHash,
      createdBy: p.userId,
      apiKeyId: p.kind === "api_key" ? p.keyId : null,
      createdAt: now,
      startedAt: null,
      finishedAt: null,
      updatedAt: now,
    };
    try {
      await db.batch([
        db.insert(runs).values(run),
        eventAfterChange(db, { tenantId: tenant.id, type: "run.created", subjectType: "run", subjectId: run.id, data: runSummary(run) }),
        auditAfterChange(db, tenant.id, actorOf(p), c.var.requestId, { action: "run.created", resourceType: "run", resourceId: run.id, details: { agent_id: agent.id } }),
      ]);
    } catch (err) {
      // Two requests with one key at once: the unique index let one in; answer the other as a replay.
      if (idempotencyKey && /UNIQUE constraint failed: runs\.tenant_id, runs\.idempotency_key/.test(errorText(err))) {
        const existing = await byKey();
        if (existing) return replay(c, existing, requestHash!);
      }
      throw err;
    }
    await enqueue(c, run);
    return c.json(render(run), 202, { location: `/v1/runs/${run.id}` });
  })
  .openapi(listRuns, async (c) => {
    const q = c.req.valid("query");
    const tenant = c.var.tenant;
    const rows = await c.var.db
      .select()
      .from(runs)
      .where(
        and(
          eq(runs.tenantId, tenant.id),
          q.status ? eq(runs.status, q.status) : undefined,
          q.agent_id ? eq(runs.agentId, q.agent_id) : undefined,
          q.project_id ? eq(runs.projectId, q.project_id) : undefined,
          q.cursor ? lt(runs.id, decodeCursor(q.cursor, "run")) : undefined,
        ),
      )
      .orderBy(desc(runs.id))
      .limit(q.limit + 1);
    return c.json(page(rows, q.limit, render), 200);
  })
  .openapi(getRun, async (c) => c.json(render(await findRun(c, c.req.valid("param").id)), 200))
  .openapi(cancelRun, async (c) => {
    const { id } = c.req.valid("param");
    const run = await findRun(c, id);
    const tenant = c.var.tenant;
    const db = c.var.db;
    const after = await requestCancel(db, run);
    if (!after) throw new ApiError("RUN_FINISHED", `Run ${id} has already finished (${(await findRun(c, id)).status})`);
    const { action, status } = after.status === "CANCELED" ? { action: "run.canceled", status: 200 as const } : { action: "run.cancel_requested", status: 202 as const };
    await auditAfterChange(db, tenant.id, actorOf(c.var.principal), c.var.requestId, { action, resourceType: "run", resourceId: id }).run();
    return c.json(render(after), status);
  })
  .openapi(runEvents, async (c) => {
    const { id } = c.req.valid("param");
    const run = await findRun(c, id);
    const tenant = c.var.tenant;
    const db = c.var.db;
    const lastEventId = c.req.valid("header")["last-event-id"];
    let after = lastEventId && /^evt_[0-9a-z]{26}$/.test(lastEventId) ? lastEventId : "";
    const release = await openStream(c, STREAM_MAX_MS);
    const encoder = new TextEncoder();
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    const writer = writable.getWriter();
    const pump = async () => {
      const started = Date.now();
      let lastWrite = Date.now();
      let finished = isFinished(run.status);
      let wait = POLL_MS.first;
      try {
        await writer.write(encoder.encode(`retry: 2000\n\n`));
        for (;;) {
          const events = await db
            .select()
            .from(outbox)
            .where(and(eq(outbox.tenantId, tenant.id), eq(outbox.subjectId, id), after ? gt(outbox.id, after) : undefined))
            .orderBy(asc(outbox.id))
            .limit(100);
          for (const e of events) {
            await writer.write(encoder.encode(`id: ${e.id}\nevent: ${e.type}\ndata: ${e.data}\n\n`));
            after = e.id;
            lastWrite = Date.now();
            if (e.type === "run.succeeded" || e.type === "run.failed" || e.type === "run.canceled") finished = true;
          }
          if (finished && events.length < 100) break;
          wait = events.length ? POLL_MS.first : Math.min(POLL_MS.max, wait * 2);
          if (Date.now() - started > STREAM_MAX_MS) break;
          if (Date.now() - lastWrite > HEARTBEAT_MS) {
            await writer.write(encoder.encode(`: keep-alive\n\n`));
            lastWrite = Date.now();
          }
          await new Promise((r) => setTimeout(r, wait));
        }
        await writer.close();
      } catch {
        // The client went away.
        await writer.abort().catch(() => {});
      } finally {
        await release();
      }
    };
    c.executionCtx.waitUntil(pump());
    return new Response(readable, { status: 200, headers: { "content-type": "text/event-stream", "cache-control": "no-store", "x-request-id": c.var.requestId } });
  });
