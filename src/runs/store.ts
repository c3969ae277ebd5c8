import { and, type SQL, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { release, reserve, settle } from "../billing/metering";
import { createArtifactStatements, type VersionContent } from "../db/artifacts";
import { eventAfterChange, type EventType, eventWritten } from "../db/outbox";
import type { TenantDb } from "../db/router";
import { runs } from "../db/tenant/schema";
import { newId } from "../lib/ids";
import type { ChatResult } from "../providers/ai";
import type { ToolDeclaration } from "../providers/ai/types";
import type { Citation } from "../knowledge/grounding";

export type RunRow = typeof runs.$inferSelect;

/** A run in one of these states is done: nothing changes it any more. */
export const isFinished = (status: RunRow["status"]) => status === "SUCCEEDED" || status === "FAILED" || status === "CANCELED";

/** Whether an attempt holds the run right now (RUNNING, lease not yet run out). */
export const isHeld = (run: RunRow, now = Date.now()) => run.status === "RUNNING" && (run.leaseUntil ?? 0) >= now;

/** Seconds until a held run's lease runs out (and a little more): when a delivery should look again. */
export const secondsUntilLeaseEnds = (run: RunRow, now = Date.now()) => Math.min(43_200, Math.ceil(((run.leaseUntil ?? now) - now) / 1000) + 5);

/**
 * How long an attempt holds a run. Longer than a queue consumer may run (15 minutes), so a lease
 * only runs out when its holder is gone; then the message's next delivery takes the run over.
 */
export const RUN_LEASE_MS = 16 * 60 * 1000;

/** The agent's settings as a run copies them. */
export interface AgentConfig {
  model: string;
  system_prompt: string | null;
  temperature: number | null;
  max_tokens: number;
  tools: ToolDeclaration[];
  /** Knowledge bases the run is grounded in (absent in runs queued before grounding existed). */
  knowledge_base_ids?: string[];
  /** The persona version that led the system prompt (absent when the agent names none). */
  persona?: { id: string; version: number };
  /** A run whose answer must be JSON of a known shape (campaign ideas): validated before anything is stored. */
  output?: StructuredOutput;
}

/** What a structured run must answer, and where its answer goes. */
export interface StructuredOutput {
  kind: "ideas";
  campaign_id: string;
  count: number;
  channels: string[];
  /** The persona's banned words, which the answer must not use (set when the run is created). */
  banned_words?: string[];
}

/** The persona version a run's system prompt began with, from the settings it copied. */
function personaOf(r: RunRow): { id: string; version: number } | null {
  if (!r.agentConfig.includes('"persona"')) return null;
  return (JSON.parse(r.agentConfig) as AgentConfig).persona ?? null;
}

/** What events and webhooks say about a run: everything but its input and output text. */
export function runSummary(r: RunRow) {
  return {
    id: r.id,
    project_id: r.projectId,
    agent_id: r.agentId,
    status: r.status,
    attempts: r.attempts,
    prompt: r.promptKey && r.promptVersion !== null ? { key: r.promptKey, version: r.promptVersion } : null,
    persona: personaOf(r),
    error: r.errorCode ? { code: r.errorCode, message: r.error } : null,
    artifact_id: r.status === "SUCCEEDED" ? r.artifactId : null,
    usage: r.tokensIn === null ? null : { model: r.model, provider: r.provider, tokens_in: r.tokensIn, tokens_out: r.tokensOut, cost_micros: r.costMicros },
    latency_ms: r.latencyMs,
    citations: r.citations ? (JSON.parse(r.citations) as Citation[]) : null,
  };
}

const isRun = (r: { tenantId: string; id: string }) => sql`${runs.tenantId} = ${r.tenantId} AND ${runs.id} = ${r.id}`;

/** The run is held by this attempt. */
const heldBy = (leaseToken: string) => sql`${runs.status} = 'RUNNING' AND ${runs.leaseToken} = ${leaseToken}`;

/** A run's calls are metered under its id: one hold at a time (each attempt's), one usage event, one debit. */
const callOf = (run: { tenantId: string; id: string }) => ({ tenantId: run.tenantId, reference: run.id });

/** `condition` on the run's row, for statements on other tables (its metering). */
const runWhere = (run: { tenantId: string; id: string }, condition: SQL) => sql`EXISTS (SELECT 1 FROM ${runs} WHERE ${isRun(run)} AND ${condition})`;

/** A change of the run's row and its event, the event written only if the row changed. */
function transition(db: TenantDb, run: RunRow, condition: SQL, set: Partial<RunRow>, type: EventType, extra: Record<string, unknown> = {}, eventId = newId("evt")) {
  const now = new Date().toISOString();
  const next = { ...run, ...set, updatedAt: now } as RunRow;
  return {
    eventId,
    update: db
      .update(runs)
      .set({ ...set, updatedAt: now })
      .where(and(isRun(run), condition))
      .returning(),
    event: eventAfterChange(db, { id: eventId, tenantId: run.tenantId, type, subjectType: "run", subjectId: run.id, data: { ...runSummary(next), ...extra } }),
  };
}

export type Claim = { run: RunRow; leaseToken: string; reserved: boolean } | null;

/**
 * Takes a PENDING run (or one whose previous attempt's lease ran out) for this attempt: RUNNING,
 * attempts + 1, a fresh lease, and `tokens` reserved against the month's quota, all in one
 * transaction. Null when another attempt holds it or it is finished; `reserved` false when the
 * quota had no room (the run is then held but must be failed).
 */
export async function claimRun(db: TenantDb, run: RunRow, tokens: number, monthlyTokens: number, now = Date.now()): Promise<Claim> {
  const leaseToken = crypto.randomUUID();
  const claimable = sql`${runs.cancelRequestedAt} IS NULL AND (${runs.status} = 'PENDING' OR (${runs.status} = 'RUNNING' AND ${runs.leaseUntil} < ${now}))`;
  const t = transition(
    db,
    run,
    claimable,
    {
      status: "RUNNING",
      // Two columns are set by SQL expressions; the event reads `attempts` from `extra` below instead.
      attempts: sql`${runs.attempts} + 1` as unknown as number,
      leaseToken,
      leaseUntil: now + RUN_LEASE_MS,
      startedAt: sql`coalesce(${runs.startedAt}, ${new Date(now).toISOString()})` as unknown as string,
    },
    "run.started",
    { attempts: run.attempts + 1 },
  );
  const [, , claimed, , , reserved] = await db.batch([
    // A previous attempt that died holding a reservation: give it back before taking a new one.
    ...release(db, callOf(run), runWhere(run, claimable)),
    t.update,
    t.event,
    // Tokens are reserved only if the claim above happened.
    ...reserve(db, callOf(run), tokens, monthlyTokens, { condition: eventWritten(t.eventId), now: new Date(now) }),
  ]);
  const row = claimed[0];
  if (!row) return null;
  return { run: row, leaseToken, reserved: reserved.length > 0 };
}

/**
 * The run's model calls settled against its hold: the usage event, the day's totals and the quota at
 * the real count, while this attempt still holds the run (first in its batch, before the transition).
 */
function billRun(db: TenantDb, run: RunRow, leaseToken: string, result: ChatResult) {
  const { usage } = result;
  const call = { tenantId: run.tenantId, userId: run.createdBy, apiKeyId: run.apiKeyId, projectId: run.projectId, source: "run" as const, sourceId: run.id };
  return settle(db, callOf(run), { ...call, model: result.model, provider: result.provider, tokensIn: usage.inputTokens, tokensOut: usage.outputTokens }, runWhere(run, heldBy(leaseToken)));
}

/** The run's columns that record what its model calls answered and cost. */
const answered = (result: ChatResult, cost: number) => ({
  output: result.text,
  model: result.model,
  provider: result.provider,
  tokensIn: result.usage.inputTokens,
  tokensOut: result.usage.outputTokens,
  costMicros: cost,
});

/** What a finished model call produced. */
export interface Outcome {
  result: ChatResult;
  latencyMs: number;
  /** The output stored in R2, for the run's artifact; absent when a cancel stopped the call. */
  artifact?: { content: VersionContent; name: string };
  /** Rows the answer becomes (a structured run's), written with the artifact: only if the run's own event is. */
  records?: (guard: SQL) => BatchItem<"sqlite">[];
}

/**
 * Ends the attempt SUCCEEDED, or CANCELED when a cancel stopped it part-way (then without an
 * artifact): the run row, its event, the usage, the quota settled to the real count and the
 * artifact with its version 1, in one transaction that writes only while this attempt still holds
 * the run. Returns the finished run and its cost, or null when the lease was lost (nothing written).
 */
export async function finishRun(db: TenantDb, run: RunRow, leaseToken: string, outcome: Outcome): Promise<{ run: RunRow; cost: number } | null> {
  const canceled = !outcome.artifact;
  const { result, latencyMs } = outcome;
  const finishedAt = new Date().toISOString();
  // Settled while this attempt still holds the run (first in the batch, before the transition changes it).
  const billed = billRun(db, run, leaseToken, result);
  // The artifact is written only if the run's own event (the transition) was.
  const eventId = newId("evt");
  const guarded = eventWritten(eventId);
  const t = transition(
    db,
    run,
    heldBy(leaseToken),
    {
      status: canceled ? "CANCELED" : "SUCCEEDED",
      ...answered(result, billed.cost),
      latencyMs,
      errorCode: canceled ? "canceled" : null,
      error: canceled ? "Canceled while running; the output so far is kept and billed" : null,
      finishedAt,
      leaseUntil: null,
    },
    canceled ? "run.canceled" : "run.succeeded",
    {},
    eventId,
  );
  const a = outcome.artifact;
  const artifact = a
    ? createArtifactStatements(
        db,
        { id: run.artifactId, tenantId: run.tenantId, projectId: run.projectId, kind: "document", name: a.name, runId: run.id, createdBy: run.createdBy },
        a.content,
        guarded,
        finishedAt,
      )
    : [];
  const records = a && outcome.records ? outcome.records(guarded) : [];
  const [, , , , finished] = await db.batch([...billed.statements, t.update, t.event, ...artifact, ...records]);
  return finished[0] ? { run: finished[0], cost: billed.cost } : null;
}

/**
 * Records what the attempt holding the run retrieved for its prompt (the citations its output will
 * carry) with a `run.retrieved` event naming the chunks, if it still holds the run.
 */
export async function recordRetrieval(db: TenantDb, run: RunRow, leaseToken: string, citations: Citation[]): Promise<RunRow | null> {
  const t = transition(db, run, heldBy(leaseToken), { citations: JSON.stringify(citations) }, "run.retrieved", {
    chunk_ids: citations.map((c) => c.chunk_id),
    document_ids: [...new Set(citations.map((c) => c.document_id))],
  });
  const [updated] = await db.batch([t.update, t.event]);
  return updated[0] ?? null;
}

/**
 * Ends the run FAILED with a reason, giving back its reservation. `condition` says which states
 * may fail: the attempt's own (its lease) or, from the dead-letter queue, any run no live attempt holds.
 */
export async function failRun(db: TenantDb, run: RunRow, condition: SQL, code: string, message: string): Promise<RunRow | null> {
  const t = transition(db, run, condition, { status: "FAILED", errorCode: code, error: message, finishedAt: new Date().toISOString(), leaseUntil: null }, "run.failed");
  const [, , failed] = await db.batch([...release(db, callOf(run), runWhere(run, condition)), t.update, t.event]);
  return failed[0] ?? null;
}

/** Fails the run from the attempt holding it. */
export const failHeldRun = (db: TenantDb, run: RunRow, leaseToken: string, code: string, message: string) => failRun(db, run, heldBy(leaseToken), code, message);

/**
 * Fails the run from the attempt holding it after its model calls ran (their answers were unusable):
 * the tokens they used are billed as a finished run's are, in the same transaction.
 */
export async function failHeldRunBilled(db: TenantDb, run: RunRow, leaseToken: string, code: string, message: string, result: ChatResult): Promise<{ run: RunRow; cost: number } | null> {
  const billed = billRun(db, run, leaseToken, result);
  const t = transition(db, run, heldBy(leaseToken), {
    status: "FAILED",
    errorCode: code,
    error: message,
    ...answered(result, billed.cost),
    finishedAt: new Date().toISOString(),
    leaseUntil: null,
  }, "run.failed");
  const [, , , , failed] = await db.batch([...billed.statements, t.update, t.event]);
  return failed[0] ? { run: failed[0], cost: billed.cost } : null;
}

/** Runs no live attempt holds (PENDING, or RUNNING past its lease): the dead-letter consumer may fail these. */
export const unheld = (now = Date.now()) => sql`(${runs.status} = 'PENDING' OR (${runs.status} = 'RUNNING' AND ${runs.leaseUntil} < ${now}))`;

/** Puts the run back to PENDING after a transient failure, giving back its reservation; the queue redelivers it later. */
export async function retryRun(db: TenantDb, run: RunRow, leaseToken: string, code: string, message: string, retryInSeconds: number): Promise<boolean> {
  const t = transition(
    db,
    run,
    heldBy(leaseToken),
    { status: "PENDING", errorCode: code, error: message, leaseToken: null, leaseUntil: null },
    "run.retrying",
    { retry_in_seconds: retryInSeconds },
  );
  const [, , retried] = await db.batch([...release(db, callOf(run), runWhere(run, heldBy(leaseToken))), t.update, t.event]);
  return retried.length > 0;
}

/** Ends a run whose cancel was asked for while its attempt was lost: CANCELED, reservation back. */
export async function cancelAbandonedRun(db: TenantDb, run: RunRow, now = Date.now()): Promise<RunRow | null> {
  const abandoned = sql`${runs.status} = 'RUNNING' AND ${runs.cancelRequestedAt} IS NOT NULL AND ${runs.leaseUntil} < ${now}`;
  const t = transition(db, run, abandoned, { status: "CANCELED", errorCode: "canceled", error: "Canceled while running", finishedAt: new Date(now).toISOString(), leaseUntil: null }, "run.canceled");
  const [, , canceled] = await db.batch([...release(db, callOf(run), runWhere(run, abandoned)), t.update, t.event]);
  return canceled[0] ?? null;
}

/**
 * A client's cancel: a PENDING run ends CANCELED at once; a RUNNING one is marked, and its attempt
 * stops the model call and ends it. Returns the run as it now is, or null if it had finished.
 */
export async function requestCancel(db: TenantDb, run: RunRow): Promise<RunRow | null> {
  const now = new Date().toISOString();
  const t = transition(db, run, sql`${runs.status} = 'PENDING'`, { status: "CANCELED", errorCode: "canceled", error: "Canceled before it ran", finishedAt: now }, "run.canceled");
  const [pending, , running] = await db.batch([
    t.update,
    t.event,
    db
      .update(runs)
      .set({ cancelRequestedAt: now, updatedAt: now })
      .where(and(isRun(run), sql`${runs.status} = 'RUNNING' AND ${runs.cancelRequestedAt} IS NULL`))
      .returning(),
  ]);
  if (pending[0]) return pending[0];
  if (running[0]) return running[0];
  const current = await db.select().from(runs).where(isRun(run)).get();
  return current && current.status === "RUNNING" ? current : null;
}
