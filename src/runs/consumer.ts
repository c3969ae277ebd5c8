import { z } from "@hono/zod-openapi";
import { tenantById } from "../db/directory";
import { and, eq } from "drizzle-orm";
import { contentKey, putContent } from "../artifacts/store";
import { debit } from "../billing/metering";
import { planOf } from "../db/plans";
import { coalescing } from "../db/coalesce";
import { type ControlDb, controlDb, tenantDb, type TenantDb } from "../db/router";
import { runs } from "../db/tenant/schema";
import type { Env } from "../env";
import { createLogger, errorFields, type Logger } from "../lib/log";
import { aiProvider, type ChatMessage, type ChatResult, ProviderError } from "../providers/ai";
import { type ChatRequest, estimateTokens } from "../providers/ai/types";
import { OUTPUT_TRIES, structuredTask } from "../content/ideas";
import { GROUNDING, ground, groundedMessages } from "../knowledge/grounding";
import {
  type AgentConfig,
  cancelAbandonedRun,
  claimRun,
  failHeldRun,
  failHeldRunBilled,
  failRun,
  finishRun,
  isFinished,
  isHeld,
  type Outcome,
  recordRetrieval,
  retryRun,
  type RunRow,
  secondsUntilLeaseEnds,
  unheld,
} from "./store";
import { bucketOf } from "../tenants/residency";

/** The body of a `runs` queue message. Versioned, so a deploy can change it while old messages drain. */
export const RunMessage = z.object({ v: z.literal(1), tenant_id: z.string().min(1).max(64), run_id: z.string().min(1).max(64) });
export type RunMessage = z.infer<typeof RunMessage>;

/** A model call running longer than this is abandoned as a (transient) time-out. */
export const RUN_TIMEOUT_MS = 5 * 60 * 1000;
/** How often a running attempt looks for a cancel request. */
const CANCEL_POLL_MS = 500;

/** Seconds before the next delivery after `attempts` failed ones: 10, 20, 40, 80, 160… (at most 10 min), with ±20% jitter. */
export function backoffSeconds(attempts: number, roll = Math.random()): number {
  const base = Math.min(600, 10 * 2 ** Math.max(0, attempts - 1));
  return Math.round(base * (0.8 + 0.4 * roll));
}

interface Target {
  db: TenantDb;
  tenantId: string;
  /** The tenant's bucket (its jurisdiction's): where its artifacts go. */
  bucket: R2Bucket;
  monthlyTokens: number;
  suspended: boolean;
}

/** The tenant a message names, with its database and plan; null if it no longer exists. */
async function targetOf(env: Env, tenantId: string, databases?: Databases): Promise<Target | null> {
  const tenant = await tenantById(env, tenantId);
  if (!tenant) return null;
  const plan = await planOf(env, tenant.planId);
  return { db: databases ? databases.tenant(tenant) : tenantDb(env, tenant), tenantId: tenant.id, bucket: bucketOf(env, tenant), monthlyTokens: plan.monthlyTokens, suspended: tenant.status === "suspended" };
}

async function readRun(db: TenantDb, tenantId: string, runId: string): Promise<RunRow | undefined> {
  // As a batch of one, so a coalescing database reads a queue batch's runs in one round trip.
  const [rows] = await db.batch([db.select().from(runs).where(and(eq(runs.tenantId, tenantId), eq(runs.id, runId)))]);
  return rows[0];
}

/** Parses a message body; a body no version of the platform wrote is logged and dropped (retrying cannot fix it). */
function parse(message: Message<unknown>, log: Logger): RunMessage | null {
  const body = RunMessage.safeParse(message.body);
  if (!body.success) {
    log.error("run.message_invalid", { message_id: message.id, issues: body.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`) });
    message.ack();
    return null;
  }
  return body.data;
}

/** The databases one queue batch's deliveries share, each coalescing their batches (see `coalescing`). */
class Databases {
  private readonly tenants = new Map<string, TenantDb>();
  readonly control: ControlDb;

  constructor(private readonly env: Env) {
    this.control = coalescing(controlDb(env));
  }

  tenant(t: { id: string; dbBinding: string }): TenantDb {
    let db = this.tenants.get(t.id);
    if (!db) {
      db = coalescing(tenantDb(this.env, t));
      this.tenants.set(t.id, db);
    }
    return db;
  }
}

/** The `runs` queue: each message executes its run at most once to completion, whatever the deliveries. */
export async function consumeRuns(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const log = createLogger({ queue: batch.queue });
  // The batch's runs read, claim, finish and debit together: one round trip per step for all of them.
  const databases = new Databases(env);
  await Promise.all(
    batch.messages.map(async (message) => {
      const body = parse(message, log);
      if (!body) return;
      try {
        await deliver(env, databases, message, body, log);
      } catch (err) {
        // Anything unexpected (a database error, a bug): deliver again later; claims keep it from running twice.
        log.error("run.delivery_failed", { ...errorFields(err), run_id: body.run_id, tenant_id: body.tenant_id, attempts: message.attempts });
        message.retry({ delaySeconds: backoffSeconds(message.attempts) });
      }
    }),
  );
}

async function deliver(env: Env, databases: Databases, message: Message<unknown>, body: RunMessage, log: Logger): Promise<void> {
  const fields = { run_id: body.run_id, tenant_id: body.tenant_id, delivery: message.attempts };
  const target = await targetOf(env, body.tenant_id, databases);
  const run = target && (await readRun(target.db, body.tenant_id, body.run_id));
  if (!target || !run) {
    log.warn("run.not_found", fields);
    return message.ack();
  }
  if (isFinished(run.status)) {
    // A duplicate or late delivery. Make sure the finished run's debit landed (it is idempotent), then drop the message.
    if (run.costMicros) await debitRun(databases.control, run);
    log.info("run.already_finished", { ...fields, status: run.status });
    return message.ack();
  }
  const now = Date.now();
  if (isHeld(run, now)) {
    // Another delivery of this run is executing it right now: look again once its lease could have run out.
    log.info("run.held_elsewhere", fields);
    return message.retry({ delaySeconds: secondsUntilLeaseEnds(run, now) });
  }
  if (run.cancelRequestedAt) {
    await cancelAbandonedRun(target.db, run, now);
    return message.ack();
  }
  if (target.suspended) {
    await failRun(target.db, run, unheld(now), "tenant_suspended", "The tenant was suspended before the run could start");
    return message.ack();
  }
  const config = JSON.parse(run.agentConfig) as AgentConfig;
  const messages: ChatMessage[] = [...(config.system_prompt ? [{ role: "system" as const, content: config.system_prompt }] : []), { role: "user", content: run.prompt }];
  const baseIds = config.knowledge_base_ids ?? [];
  // Room in the reservation for the knowledge the prompt may be grounded in.
  const estimate = messages.reduce((n, m) => n + estimateTokens(m.content), 0) + config.max_tokens + (baseIds.length ? GROUNDING.budgetTokens : 0);
  const claim = await claimRun(target.db, run, estimate, target.monthlyTokens, now);
  if (!claim) {
    // Lost a race with another delivery between the read and the claim; the next look sorts it out.
    log.info("run.claim_lost", fields);
    return message.retry({ delaySeconds: 5 });
  }
  const { leaseToken } = claim;
  if (!claim.reserved) {
    await failHeldRun(target.db, claim.run, leaseToken, "quota_exceeded", `This month's ${target.monthlyTokens} tokens have no room for this run (about ${estimate})`);
    log.info("run.failed", { ...fields, code: "quota_exceeded" });
    return message.ack();
  }
  log.info("run.started", { ...fields, attempt: claim.run.attempts });
  const started = Date.now();
  const grounded = baseIds.length ? await groundRun(env, target, claim.run, leaseToken, baseIds, messages, log) : { run: claim.run, messages };
  claim.run = grounded.run;
  const task = config.output && structuredTask(config.output);
  const call = task ? await answerStructured(env, target.db, claim.run, config, grounded.messages, task) : await callModel(env, target.db, claim.run, config, grounded.messages);
  if (call.kind === "malformed") {
    const reason = `The model's answer did not match the schema after ${OUTPUT_TRIES} tries; the last: ${call.problem}`;
    const failed = await failHeldRunBilled(target.db, claim.run, leaseToken, "malformed_output", reason, call.result);
    if (failed) await debitRun(databases.control, failed.run);
    log.info("run.failed", { ...fields, code: "malformed_output", problem: call.problem });
    return message.ack();
  }
  if (call.kind === "error") {
    const err = call.error;
    if (call.timedOut || (err instanceof ProviderError && err.retryable) || !(err instanceof ProviderError)) {
      const delay = backoffSeconds(message.attempts);
      const reason = call.timedOut ? `The model did not answer within ${RUN_TIMEOUT_MS / 1000} s` : errorMessage(err);
      await retryRun(target.db, claim.run, leaseToken, call.timedOut ? "timeout" : "provider_error", reason, delay);
      log.warn("run.retrying", { ...fields, error: reason, retry_in_seconds: delay });
      return message.retry({ delaySeconds: delay });
    }
    await failHeldRun(target.db, claim.run, leaseToken, "provider_rejected", errorMessage(err));
    log.info("run.failed", { ...fields, code: "provider_rejected" });
    return message.ack();
  }
  const result = call.result;
  // A canceled run keeps its partial output on the run, but makes no artifact.
  let artifact: Outcome["artifact"];
  if (!call.canceled) {
    // A structured answer is stored as the JSON it was checked as; a text one as the model wrote it.
    const body = call.structured ? `${JSON.stringify(call.structured.answer, null, 2)}\n` : result.text;
    const bytes = new TextEncoder().encode(body);
    const contentType = task ? "application/json" : "text/markdown; charset=utf-8";
    const stored = await putContent(target.bucket, contentKey(run.tenantId, run.artifactId), new Blob([bytes]).stream(), bytes.byteLength, contentType);
    artifact = { content: { ...stored, contentType }, name: task ? task.name : `Output of ${run.id}` };
  }
  const finished = await finishRun(target.db, claim.run, leaseToken, { result, latencyMs: Date.now() - started, artifact, records: call.structured?.records });
  if (!finished) {
    // Another attempt took the run over (this one outlived its lease): it owns the outcome; drop ours.
    if (artifact) await target.bucket.delete(artifact.content.key);
    log.warn("run.lease_lost", fields);
    return message.ack();
  }
  await debitRun(databases.control, finished.run);
  log.info(call.canceled ? "run.canceled" : "run.succeeded", { ...fields, tokens_in: result.usage.inputTokens, tokens_out: result.usage.outputTokens, cost_micros: finished.cost });
  message.ack();
}

type ModelCall =
  | { kind: "ok"; result: ChatResult; canceled: boolean; structured?: { answer: unknown; records: NonNullable<Outcome["records"]> } }
  | { kind: "error"; error: unknown; timedOut: boolean }
  | { kind: "malformed"; result: ChatResult; problem: string };

/**
 * A structured run's model calls: the answer is asked for in JSON mode and checked against the
 * schema; a malformed one is shown back to the model with what is wrong and asked for again, up to
 * OUTPUT_TRIES calls. Every call's tokens count (the answer's usage is their sum), whatever the end.
 */
async function answerStructured(env: Env, db: TenantDb, run: RunRow, config: AgentConfig, messages: ChatMessage[], task: ReturnType<typeof structuredTask>): Promise<ModelCall> {
  let conversation = messages;
  let used = { inputTokens: 0, outputTokens: 0 };
  for (let attempt = 1; ; attempt++) {
    const call = await callModel(env, db, run, config, conversation, { type: "json_schema", json_schema: task.schema });
    if (call.kind !== "ok") return call;
    used = { inputTokens: used.inputTokens + call.result.usage.inputTokens, outputTokens: used.outputTokens + call.result.usage.outputTokens };
    const result = { ...call.result, usage: used };
    if (call.canceled) return { ...call, result };
    const parsed = task.parse(call.result.text);
    if (parsed.ok) return { kind: "ok", result, canceled: false, structured: { answer: parsed.value, records: (guard) => task.records(db, run, parsed.value, guard) } };
    if (attempt >= OUTPUT_TRIES) return { kind: "malformed", result, problem: parsed.problem };
    conversation = [
      ...conversation,
      { role: "assistant", content: call.result.text },
      { role: "user", content: `That answer does not match the JSON Schema (${parsed.problem}). Answer again with JSON only, matching the schema.` },
    ];
  }
}

/**
 * Calls the model with a time-out, stopping early if the run's cancel is asked for meanwhile (the
 * output so far is kept and billed).
 */
async function callModel(env: Env, db: TenantDb, run: RunRow, config: AgentConfig, messages: ChatMessage[], responseFormat?: ChatRequest["responseFormat"]): Promise<ModelCall> {
  const controller = new AbortController();
  let canceled = false;
  let timedOut = false;
  const timeout = setTimeout(() => {
    timedOut = true;
    controller.abort(new Error("timeout"));
  }, RUN_TIMEOUT_MS);
  const poll = setInterval(async () => {
    try {
      const row = await db.select({ cancelRequestedAt: runs.cancelRequestedAt }).from(runs).where(and(eq(runs.tenantId, run.tenantId), eq(runs.id, run.id))).get();
      if (row?.cancelRequestedAt && !controller.signal.aborted) {
        canceled = true;
        controller.abort(new Error("canceled"));
      }
    } catch {
      // A missed look is made up by the next one.
    }
  }, CANCEL_POLL_MS);
  let partial = "";
  const provider = aiProvider(env);
  try {
    const result = await provider.chat(
      {
        model: config.model,
        messages,
        maxTokens: config.max_tokens,
        ...(config.temperature !== null && { temperature: config.temperature }),
        ...(config.tools.length && { tools: config.tools }),
        ...(responseFormat && { responseFormat }),
        signal: controller.signal,
      },
      (text) => (partial += text),
    );
    if (timedOut) return { kind: "error", error: new Error("timeout"), timedOut: true };
    return { kind: "ok", result, canceled };
  } catch (error) {
    if (canceled) {
      // The provider threw on abort: bill what it had sent, as the local estimate counts it.
      const prompt = messages.map((m) => m.content).join("\n");
      return {
        kind: "ok",
        canceled: true,
        result: { text: partial, usage: { inputTokens: estimateTokens(prompt), outputTokens: estimateTokens(partial) }, model: config.model, provider: provider.name },
      };
    }
    return { kind: "error", error, timedOut };
  } finally {
    clearTimeout(timeout);
    clearInterval(poll);
  }
}

/**
 * Retrieves knowledge for the run's prompt and records it (`run.retrieved`, the run's citations);
 * the retrieval's embedding is metered under its own reference per attempt. A retrieval that fails
 * leaves the run ungrounded rather than failing it.
 */
async function groundRun(env: Env, target: Target, run: RunRow, leaseToken: string, baseIds: string[], messages: ChatMessage[], log: Logger): Promise<{ run: RunRow; messages: ChatMessage[] }> {
  const background: Promise<unknown>[] = [];
  try {
    const grounding = await ground(
      {
        env,
        db: target.db,
        tenantId: run.tenantId,
        monthlyTokens: target.monthlyTokens,
        userId: run.createdBy,
        apiKeyId: run.apiKeyId,
        reference: `${run.id}.retrieval.${run.attempts}`,
        sourceId: run.id,
        waitUntil: (promise) => background.push(promise),
        log,
      },
      baseIds,
      run.prompt,
    );
    if (!grounding) return { run, messages };
    const recorded = await recordRetrieval(target.db, run, leaseToken, grounding.citations);
    return { run: recorded ?? run, messages: groundedMessages(messages, grounding.instructions) };
  } catch (err) {
    log.warn("run.retrieval_failed", { ...errorFields(err), run_id: run.id });
    return { run, messages };
  } finally {
    await Promise.allSettled(background);
  }
}

const errorMessage = (err: unknown) => (err instanceof Error ? err.message : String(err)).slice(0, 500);

/** Debits the tenant's credit for a finished run; the ledger refuses a second debit for the same run. */
async function debitRun(control: ControlDb, run: RunRow): Promise<void> {
  await debit(control, { tenantId: run.tenantId, reference: run.id }, run.costMicros ?? 0, `run (${run.model})`);
}

/**
 * The runs dead-letter queue: a message lands here after its last retry. Its run is failed with the
 * last error it saw, unless an attempt still holds it (that attempt will finish it).
 */
export async function consumeDeadRuns(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const log = createLogger({ queue: batch.queue });
  await Promise.all(
    batch.messages.map(async (message) => {
      const body = parse(message, log);
      if (!body) return;
      const fields = { run_id: body.run_id, tenant_id: body.tenant_id };
      try {
        const target = await targetOf(env, body.tenant_id);
        const run = target && (await readRun(target.db, body.tenant_id, body.run_id));
        if (!target || !run || isFinished(run.status)) return message.ack();
        const now = Date.now();
        if (isHeld(run, now)) return message.retry({ delaySeconds: secondsUntilLeaseEnds(run, now) });
        const reason = `Gave up after ${run.attempts} attempt${run.attempts === 1 ? "" : "s"}${run.error ? `; the last failed with: ${run.error}` : ""}`;
        const failed = await failRun(target.db, run, unheld(now), "retries_exhausted", reason);
        log.warn("run.dead_lettered", { ...fields, failed: Boolean(failed), attempts: run.attempts });
        message.ack();
      } catch (err) {
        log.error("run.dead_letter_failed", { ...errorFields(err), ...fields });
        message.retry({ delaySeconds: 60 });
      }
    }),
  );
}
