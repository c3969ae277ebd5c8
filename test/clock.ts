import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { vi } from "vitest";
import worker from "../src/index";

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

/** Fires the cron trigger as the runtime would, and waits for the sweep it leaves running. */
export async function runCron(): Promise<void> {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ cron: "*/5 * * * *" }), env, ctx);
  await waitOnExecutionContext(ctx);
}
