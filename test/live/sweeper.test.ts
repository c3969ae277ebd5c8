import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { STUCK_AFTER_MS } from "../../src/runs/sweeper";
import { createTenant, tenantD1 } from "../harness";
import { createAgent, getRun, runEvents, startRun } from "../runs";

describe("runs left PENDING without a message", () => {
  it("are queued again by the cron trigger, and run", async () => {
    const t = await createTenant();
    const a = await createAgent(t);
    const done = await startRun(t, a, { text: "delivered normally" });
    await runEvents(t, done.id);
    // A run whose queue send failed: PENDING, its message never sent, last touched long ago.
    const db = await tenantD1(t);
    const lostId = `run_${"0".repeat(10)}${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
    const longAgo = new Date(Date.now() - STUCK_AFTER_MS - 60_000).toISOString();
    await db
      .prepare(
        `INSERT INTO runs (id, tenant_id, project_id, agent_id, status, input, agent_config, prompt, attempts, reserved_tokens, artifact_id, model, created_by, created_at, updated_at)
         SELECT ?, tenant_id, project_id, agent_id, 'PENDING', input, agent_config, 'a run nobody queued', 0, 0, ?, model, created_by, ?, ? FROM runs WHERE id = ?`,
      )
      .bind(lostId, `art_${crypto.randomUUID().replaceAll("-", "").slice(0, 26)}`, longAgo, longAgo, done.id)
      .run();

    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: "*/5 * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);

    const events = await runEvents(t, lostId);
    expect(events.map((e) => e.type)).toEqual(["run.started", "run.succeeded"]);
    expect(await getRun(t, lostId)).toMatchObject({ status: "SUCCEEDED", attempts: 1 });
    expect(await getRun(t, done.id)).toMatchObject({ status: "SUCCEEDED", attempts: 1 });
  }, 30_000);
});
