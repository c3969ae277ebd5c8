import { createExecutionContext, createMessageBatch, createScheduledController, env, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { vi } from "vitest";
import worker, { QUEUES } from "../src/index";
import { planSweep } from "../src/runs/sweeper";

/** Runs `fn` with the clock at `at` (ms): the Worker and its Durable Objects see that time; nothing sleeps. */
export async function atTime<T>(at: number, fn: () => Promise<T>): Promise<T> {
  vi.useFakeTimers({ toFake: ["Date"] });
  try {
    vi.setSystemTime(at);
    return await fn();
  } finally {
    vi.useRealTimers();
  }
}

/**
 * Fires the cron trigger as the runtime would, then delivers the sweep it queued, group by group
 * (here the sweep queue delivers nowhere: tests deliver batches themselves, as planSweep made them).
 */
export async function runCron(): Promise<void> {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ cron: "*/5 * * * *" }), env, ctx);
  await waitOnExecutionContext(ctx);
  for (const body of await planSweep(env)) {
    const batch = createMessageBatch(QUEUES.sweep, [{ id: crypto.randomUUID(), timestamp: new Date(), attempts: 1, body }]);
    const done = createExecutionContext();
    await worker.queue(batch, env);
    await getQueueResult(batch, done);
  }
}
