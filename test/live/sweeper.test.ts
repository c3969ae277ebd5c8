import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { STUCK_AFTER_MS } from "../../src/runs/sweeper";
import { STALE_HOLD_MS } from "../../src/billing/metering";
import { createTenant, eventually, quota, tenantD1 } from "../harness";
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
        `INSERT INTO runs (id, tenant_id, project_id, agent_id, status, input, agent_config, prompt, attempts, artifact_id, model, created_by, created_at, updated_at)
         SELECT ?, tenant_id, project_id, agent_id, 'PENDING', input, agent_config, 'a run nobody queued', 0, ?, model, created_by, ?, ? FROM runs WHERE id = ?`,
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

describe("reservations whose call died with its holder", () => {
  it("are given back, unbilled, by the cron trigger; a live one is kept", async () => {
    const t = await createTenant();
    const db = await tenantD1(t);
    const month = new Date().toISOString().slice(0, 7);
    const longAgo = new Date(Date.now() - STALE_HOLD_MS - 60_000).toISOString();
    await db.batch([
      db.prepare("INSERT INTO token_quota (tenant_id, month, used, reserved) VALUES (?, ?, 0, 700)").bind(t.id, month),
      db.prepare("INSERT INTO quota_holds (tenant_id, reference, month, tokens, created_at) VALUES (?, 'rpl_dead', ?, 500, ?)").bind(t.id, month, longAgo),
      db.prepare("INSERT INTO quota_holds (tenant_id, reference, month, tokens) VALUES (?, 'rpl_live', ?, 200)").bind(t.id, month),
    ]);
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: "*/5 * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);
    // The trigger queued the sweep; the runtime delivers it to the sweep consumer.
    await eventually(async () => expect(await quota(t)).toEqual({ used: 0, reserved: 200 }), 15_000);
    const left = await db.prepare("SELECT reference FROM quota_holds WHERE tenant_id = ?").bind(t.id).all<{ reference: string }>();
    expect(left.results.map((r) => r.reference)).toEqual(["rpl_live"]);
    expect((await db.prepare("SELECT count(*) AS n FROM usage_events").first<{ n: number }>())!.n).toBe(0);
  });
});
