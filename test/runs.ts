import { createExecutionContext, createMessageBatch, env, getQueueResult } from "cloudflare:test";
import { expect } from "vitest";
import worker, { QUEUES } from "../src/index";
import { call, expectStatus, tenantD1, type TestTenant } from "./harness";

/** A project and an agent in it, through the API. */
export async function createAgent(t: TestTenant, extra: Record<string, unknown> = {}) {
  const project = await call(`${t.host}/v1/projects`, { token: t.owner.token, body: { name: "Runs project" } });
  expectStatus(project, 201);
  const agent = await call(`${t.host}/v1/agents`, { token: t.owner.token, body: { project_id: project.body.id, name: "Writer", system_prompt: "You write.", ...extra } });
  expectStatus(agent, 201);
  return { projectId: project.body.id as string, agentId: agent.body.id as string, agent: agent.body };
}

/** Queues a run through the API and returns it (202). */
export async function startRun(t: TestTenant, a: { projectId: string; agentId: string }, input: Record<string, unknown>, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  const res = await call(`${t.host}/v1/runs`, { token: t.owner.token, body: { agent_id: a.agentId, project_id: a.projectId, input, ...extra }, headers });
  expectStatus(res, 202);
  return res.body as { id: string; status: string; artifact_id: string | null; [k: string]: unknown };
}

/** The queue message POST /v1/runs sent for a run. */
export const runMessage = (t: TestTenant, runId: string) => ({ v: 1, tenant_id: t.id, run_id: runId });

/**
 * Delivers one message to the Worker's queue handler as the Queues runtime would (a real
 * MessageBatch, `attempts` as the runtime counts them) and returns what the handler did with it.
 */
export async function deliver(queue: string, body: unknown, attempts = 1, id = crypto.randomUUID()) {
  const batch = createMessageBatch(queue, [{ id, timestamp: new Date(), attempts, body }]);
  const ctx = createExecutionContext();
  await worker.queue(batch, env);
  const result = await getQueueResult(batch, ctx);
  // (The pool does not report a retry's delay; the run's `run.retrying` event carries it.)
  return { acked: result.explicitAcks.includes(id), retried: result.retryMessages.some((m) => m.msgId === id), result };
}

export const deliverRun = (t: TestTenant, runId: string, attempts = 1, id?: string) => deliver(QUEUES.runs, runMessage(t, runId), attempts, id);
export const deliverDead = (t: TestTenant, runId: string) => deliver(QUEUES.runsDead, runMessage(t, runId));

export async function getRun(t: TestTenant, id: string) {
  const res = await call(`${t.host}/v1/runs/${id}`, { token: t.owner.token });
  expectStatus(res, 200);
  return res.body;
}

/** The run's events as the SSE endpoint streams them, read to the end of the stream. */
export async function runEvents(t: TestTenant, id: string, lastEventId?: string) {
  const res = await call(`${t.host}/v1/runs/${id}/events`, { token: t.owner.token, headers: lastEventId ? { "last-event-id": lastEventId } : {} });
  expectStatus(res, 200);
  expect(res.headers.get("content-type")).toBe("text/event-stream");
  return parseEvents(res.text);
}

/** The events of a server-sent-events body: id, type and parsed data. */
export function parseEvents(text: string) {
  return text
    .split("\n\n")
    .filter((block) => block.includes("event: "))
    .map((block) => {
      const field = (name: string) => block.split("\n").find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2);
      return { id: field("id")!, type: field("event")!, data: JSON.parse(field("data")!) };
    });
}

/** Rows of a tenant table about one run, to count what was written. */
export async function countRows(t: TestTenant, sql: string, ...binds: unknown[]): Promise<number> {
  const row = await (await tenantD1(t)).prepare(sql).bind(...binds).first<{ n: number }>();
  return row!.n;
}

/** Debits in the tenant's credit ledger for a reference. */
export async function debits(t: TestTenant, reference: string): Promise<number> {
  const row = await env.CONTROL_DB.prepare("SELECT count(*) AS n FROM credit_ledger WHERE tenant_id = ? AND kind = 'debit' AND reference = ?").bind(t.id, reference).first<{ n: number }>();
  return row!.n;
}
