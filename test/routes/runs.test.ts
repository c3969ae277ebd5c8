import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { LOCAL_FAILURE_TRIGGER, LOCAL_REJECTION_TRIGGER } from "../../src/providers/ai/local";
import { adminToken, call, createTenant, eventually, expectProblem, expectStatus, PLATFORM, quota, tenantD1, useTokens } from "../harness";
import { countRows, createAgent, debits, deliver, deliverDead, deliverRun, getRun, parseEvents, runEvents, runMessage, startRun } from "../runs";
import { QUEUES } from "../../src/index";
import { drizzle } from "drizzle-orm/d1";
import { eq } from "drizzle-orm";
import * as tenantSchema from "../../src/db/tenant/schema";
import { claimRun, RUN_LEASE_MS } from "../../src/runs/store";

/** Text that fails the local model's first `n` calls with it, unique to the test so counts do not mix. */
const failingFirst = (n: number) => `[[simulate provider failure ${n}x]] ${crypto.randomUUID()}`;

describe("a run's life through the runs queue", () => {
  it("goes PENDING → RUNNING → SUCCEEDED with its output, an artifact, usage, one debit and events", async () => {
    const t = await createTenant();
    const a = await createAgent(t);
    const created = await call(`${t.host}/v1/runs`, { token: t.owner.token, body: { agent_id: a.agentId, project_id: a.projectId, input: { text: "Write about tides" } } });
    expectStatus(created, 202);
    expect(created.body).toMatchObject({ status: "PENDING", attempts: 0, output: null, artifact_id: null, prompt: null });
    expect(created.headers.get("location")).toBe(`/v1/runs/${created.body.id}`);

    const delivery = await deliverRun(t, created.body.id);
    expect(delivery).toMatchObject({ acked: true, retried: false });

    const run = await getRun(t, created.body.id);
    expect(run).toMatchObject({ status: "SUCCEEDED", attempts: 1, error: null, usage: { provider: "local", model: a.agent.model } });
    expect(run.output).toContain("Write about tides");
    expect(run.usage.tokens_in).toBeGreaterThan(0);
    expect(run.usage.tokens_out).toBeGreaterThan(0);
    expect(run.latency_ms).toBeGreaterThanOrEqual(0);
    expect(run.started_at).not.toBeNull();
    expect(run.finished_at).not.toBeNull();

    // The output is an artifact's version 1, in R2 under the tenant's prefix.
    const artifact = await call(`${t.host}/v1/artifacts/${run.artifact_id}`, { token: t.owner.token });
    expectStatus(artifact, 200);
    expect(artifact.body).toMatchObject({ kind: "document", run_id: run.id, latest_version: 1, project_id: a.projectId });
    const content = await call(`${t.host}/v1/artifacts/${run.artifact_id}/versions/1/content`, { token: t.owner.token });
    expectStatus(content, 200);
    expect(content.text).toBe(run.output);
    expect(content.headers.get("content-type")).toContain("text/markdown");
    expect((await env.ARTIFACTS.list({ prefix: `tenants/${t.id}/artifacts/${run.artifact_id}/` })).objects).toHaveLength(1);

    // Usage, quota and credit, once.
    const usage = await call(`${t.host}/v1/usage`, { token: t.owner.token });
    expect(usage.body.total).toMatchObject({ calls: 1, tokens_in: run.usage.tokens_in, tokens_out: run.usage.tokens_out });
    expect(await quota(t)).toEqual({ used: run.usage.tokens_in + run.usage.tokens_out, reserved: 0 });
    expect(await debits(t, run.id)).toBe(1);

    // Every state change is an event in the outbox, streamed as SSE; the stream ends with the run.
    const events = await runEvents(t, run.id);
    expect(events.map((e) => e.type)).toEqual(["run.created", "run.started", "run.succeeded"]);
    expect(events[2]!.data).toMatchObject({ id: run.id, status: "SUCCEEDED", artifact_id: run.artifact_id });
    expect(await countRows(t, "SELECT count(*) AS n FROM outbox WHERE tenant_id = ? AND type = 'artifact.created' AND subject_id = ?", t.id, run.artifact_id)).toBe(1);
  });

  it("never executes or bills twice when a message is delivered twice, even at once", async () => {
    const t = await createTenant();
    const a = await createAgent(t);
    const run = await startRun(t, a, { text: "Once only" });
    const [first, second] = await Promise.all([deliverRun(t, run.id), deliverRun(t, run.id)]);
    // One executed it; the other found it held (retry later) or finished (ack), never a second execution.
    expect([first.acked, second.acked].filter(Boolean).length).toBeGreaterThanOrEqual(1);
    const late = await deliverRun(t, run.id, 2);
    expect(late).toMatchObject({ acked: true, retried: false });
    const done = await getRun(t, run.id);
    expect(done).toMatchObject({ status: "SUCCEEDED", attempts: 1 });
    expect(await countRows(t, "SELECT count(*) AS n FROM usage_events WHERE source = 'run' AND source_id = ?", run.id)).toBe(1);
    expect(await countRows(t, "SELECT count(*) AS n FROM artifact_versions WHERE artifact_id = ?", done.artifact_id)).toBe(1);
    expect(await countRows(t, "SELECT count(*) AS n FROM outbox WHERE subject_id = ? AND type = 'run.succeeded'", run.id)).toBe(1);
    expect(await debits(t, run.id)).toBe(1);
    expect((await env.ARTIFACTS.list({ prefix: `tenants/${t.id}/artifacts/${done.artifact_id}/` })).objects).toHaveLength(1);
  });

  it("retries a transient provider failure with growing backoff, then succeeds", async () => {
    const t = await createTenant();
    const a = await createAgent(t);
    const run = await startRun(t, a, { text: failingFirst(2) });

    const d1 = await deliverRun(t, run.id, 1);
    expect(d1).toMatchObject({ acked: false, retried: true });
    let state = await getRun(t, run.id);
    expect(state).toMatchObject({ status: "PENDING", attempts: 1, error: { code: "provider_error" } });
    expect(await quota(t)).toMatchObject({ reserved: 0 });

    expect(await deliverRun(t, run.id, 2)).toMatchObject({ acked: false, retried: true });

    const d3 = await deliverRun(t, run.id, 3);
    expect(d3).toMatchObject({ acked: true, retried: false });
    state = await getRun(t, run.id);
    expect(state).toMatchObject({ status: "SUCCEEDED", attempts: 3, error: null });
    const events = await runEvents(t, run.id);
    expect(events.map((e) => e.type)).toEqual(["run.created", "run.started", "run.retrying", "run.started", "run.retrying", "run.started", "run.succeeded"]);
    // Exponential backoff: 10 s then 20 s, each ±20%.
    const delays = events.filter((e) => e.type === "run.retrying").map((e) => e.data.retry_in_seconds as number);
    expect(delays[0]).toBeGreaterThanOrEqual(8);
    expect(delays[0]).toBeLessThanOrEqual(12);
    expect(delays[1]).toBeGreaterThanOrEqual(16);
    expect(delays[1]).toBeLessThanOrEqual(24);
    expect(await countRows(t, "SELECT count(*) AS n FROM usage_events WHERE source_id = ?", run.id)).toBe(1);
    expect(await quota(t)).toMatchObject({ reserved: 0, used: state.usage.tokens_in + state.usage.tokens_out });
  });

  it("sends a run that keeps failing to the dead-letter queue, whose consumer marks it FAILED", async () => {
    const t = await createTenant();
    const a = await createAgent(t);
    const run = await startRun(t, a, { text: `${LOCAL_FAILURE_TRIGGER} always` });
    // wrangler.toml: max_retries = 5, so six deliveries, each retried; the runtime then dead-letters the message.
    for (let attempt = 1; attempt <= 6; attempt++) expect(await deliverRun(t, run.id, attempt)).toMatchObject({ retried: true });
    expect(await getRun(t, run.id)).toMatchObject({ status: "PENDING", attempts: 6 });

    expect(await deliverDead(t, run.id)).toMatchObject({ acked: true });
    const failed = await getRun(t, run.id);
    expect(failed).toMatchObject({ status: "FAILED", attempts: 6, error: { code: "retries_exhausted" }, output: null, artifact_id: null });
    expect(failed.error.message).toContain("Gave up after 6 attempts");
    expect(failed.error.message).toContain("simulated provider failure");
    expect((await runEvents(t, run.id)).at(-1)).toMatchObject({ type: "run.failed" });
    expect(await countRows(t, "SELECT count(*) AS n FROM usage_events WHERE source_id = ?", run.id)).toBe(0);
    expect(await quota(t)).toMatchObject({ reserved: 0, used: 0 });

    // A second dead letter, or a late delivery, changes nothing.
    expect(await deliverDead(t, run.id)).toMatchObject({ acked: true });
    expect(await deliverRun(t, run.id, 7)).toMatchObject({ acked: true });
    expect(await countRows(t, "SELECT count(*) AS n FROM outbox WHERE subject_id = ? AND type = 'run.failed'", run.id)).toBe(1);
  });

  it("fails a request the provider rejects at once, without retrying", async () => {
    const t = await createTenant();
    const a = await createAgent(t);
    const run = await startRun(t, a, { text: `${LOCAL_REJECTION_TRIGGER} please` });
    expect(await deliverRun(t, run.id)).toMatchObject({ acked: true, retried: false });
    expect(await getRun(t, run.id)).toMatchObject({ status: "FAILED", attempts: 1, error: { code: "provider_rejected" } });
    expect(await quota(t)).toMatchObject({ reserved: 0 });
  });

  it("drops a message whose body no version of the platform wrote, touching nothing", async () => {
    const t = await createTenant();
    const a = await createAgent(t);
    const run = await startRun(t, a, { text: "untouched" });
    expect(await deliver(QUEUES.runs, { run_id: run.id })).toMatchObject({ acked: true });
    expect(await deliver(QUEUES.runs, "not json at all")).toMatchObject({ acked: true });
    expect(await deliver(QUEUES.runs, { ...runMessage(t, "run_nonexistent") })).toMatchObject({ acked: true });
    expect(await getRun(t, run.id)).toMatchObject({ status: "PENDING", attempts: 0 });
  });
});

describe("creating a run", () => {
  it("stores a plain run as the full path would, and answers a bad one naming the field with nothing written", async () => {
    const t = await createTenant();
    const tools = [{ name: "lookup", description: "Looks a word up", parameters: { type: "object", properties: { word: { type: "string" } } } }];
    const a = await createAgent(t, { temperature: 0.3, max_tokens: 256, tools });
    // A plain run is stored by one conditional insert; an Idempotency-Key takes the full path (reads, then insert).
    const direct = await startRun(t, a, { text: "direct" });
    const full = await startRun(t, a, { text: "full" }, {}, { "idempotency-key": `k-${crypto.randomUUID()}` });
    const configs = await Promise.all(
      [direct.id, full.id].map(async (id) => JSON.parse((await (await tenantD1(t)).prepare("SELECT agent_config FROM runs WHERE id = ?").bind(id).first<{ agent_config: string }>())!.agent_config)),
    );
    expect(configs[0]).toEqual(configs[1]);
    expect(configs[0]).toEqual({ model: a.agent.model, system_prompt: "You write.", temperature: 0.3, max_tokens: 256, tools, knowledge_base_ids: [] });
    expect(direct).toMatchObject({ status: "PENDING", agent_id: a.agentId, project_id: a.projectId, input: { text: "direct" } });
    expect(await countRows(t, "SELECT count(*) AS n FROM outbox WHERE type = 'run.created' AND subject_id = ?", direct.id)).toBe(1);
    expect(await countRows(t, "SELECT count(*) AS n FROM audit_log WHERE action = 'run.created' AND resource_id = ?", direct.id)).toBe(1);

    const other = await createAgent(t);
    const post = (body: Record<string, unknown>) => call(`${t.host}/v1/runs`, { token: t.owner.token, body: { agent_id: a.agentId, project_id: a.projectId, input: { text: "x" }, ...body } });
    const noProject = await post({ project_id: "prj_01m8jn0000000000000000000" });
    expectProblem(noProject, 404, "NOT_FOUND");
    expect(noProject.body.errors[0].field).toBe("project_id");
    const elsewhere = await post({ agent_id: other.agentId });
    expectProblem(elsewhere, 400, "VALIDATION_FAILED");
    expect(elsewhere.body.errors[0].field).toBe("agent_id");
    const blank = await post({ input: { text: "  " } });
    expectProblem(blank, 400, "VALIDATION_FAILED");
    expect(blank.body.errors[0].field).toBe("input.text");
    expect(await countRows(t, "SELECT count(*) AS n FROM runs")).toBe(2);
    expect(await countRows(t, "SELECT count(*) AS n FROM outbox WHERE type = 'run.created'")).toBe(2);
  });
});

describe("a consumer that dies mid-run", () => {
  /**
   * Leaves the run as a consumer killed mid-run leaves it: claimed through the real claim (RUNNING,
   * a lease, `reserved` tokens held) and never finished. `claimedAt` moves the clock: a claim made
   * longer ago than the lease has run out.
   */
  async function abandon(t: Awaited<ReturnType<typeof createTenant>>, runId: string, claimedAt: number, reserved: number) {
    const db = drizzle(await tenantD1(t), { schema: tenantSchema, casing: "snake_case" });
    const row = (await db.select().from(tenantSchema.runs).where(eq(tenantSchema.runs.id, runId)).get())!;
    const claim = await claimRun(db, row, reserved, 1_000_000, claimedAt);
    expect(claim?.reserved).toBe(true);
  }

  it("leaves a run it still holds alone: the delivery waits for the lease", async () => {
    const t = await createTenant();
    const a = await createAgent(t);
    const run = await startRun(t, a, { text: "held" });
    await abandon(t, run.id, Date.now(), 500);
    expect(await deliverRun(t, run.id, 2)).toMatchObject({ acked: false, retried: true });
    expect(await deliverDead(t, run.id)).toMatchObject({ acked: false, retried: true });
    expect(await getRun(t, run.id)).toMatchObject({ status: "RUNNING", attempts: 1 });
    expect(await quota(t)).toMatchObject({ reserved: 500 });
  });

  it("takes the run over once the lease has run out, giving back the dead attempt's reservation", async () => {
    const t = await createTenant();
    const a = await createAgent(t);
    const run = await startRun(t, a, { text: "taken over" });
    await abandon(t, run.id, Date.now() - RUN_LEASE_MS - 1000, 500);
    expect(await deliverRun(t, run.id, 2)).toMatchObject({ acked: true });
    const done = await getRun(t, run.id);
    expect(done).toMatchObject({ status: "SUCCEEDED", attempts: 2 });
    expect(await quota(t)).toEqual({ reserved: 0, used: done.usage.tokens_in + done.usage.tokens_out });
    expect(await countRows(t, "SELECT count(*) AS n FROM usage_events WHERE source_id = ?", run.id)).toBe(1);
    expect(await countRows(t, "SELECT count(*) AS n FROM quota_holds WHERE reference = ?", run.id)).toBe(0);
    expect(await debits(t, run.id)).toBe(1);
    // A late delivery of the killed attempt's message bills nothing more.
    expect(await deliverRun(t, run.id, 3)).toMatchObject({ acked: true });
    expect(await quota(t)).toEqual({ reserved: 0, used: done.usage.tokens_in + done.usage.tokens_out });
    expect(await countRows(t, "SELECT count(*) AS n FROM usage_events WHERE source_id = ?", run.id)).toBe(1);
    expect(await debits(t, run.id)).toBe(1);
  });
});

describe("canceling a run", () => {
  it("cancels a PENDING run at once; its delivery then runs nothing", async () => {
    const t = await createTenant();
    const a = await createAgent(t);
    const run = await startRun(t, a, { text: "never run" });
    const canceled = await call(`${t.host}/v1/runs/${run.id}/cancel`, { method: "POST", token: t.owner.token });
    expectStatus(canceled, 200);
    expect(canceled.body).toMatchObject({ status: "CANCELED", error: { code: "canceled" } });
    expect(await deliverRun(t, run.id)).toMatchObject({ acked: true });
    expect(await getRun(t, run.id)).toMatchObject({ status: "CANCELED", attempts: 0 });
    expect(await countRows(t, "SELECT count(*) AS n FROM usage_events WHERE source_id = ?", run.id)).toBe(0);
    expectProblem(await call(`${t.host}/v1/runs/${run.id}/cancel`, { method: "POST", token: t.owner.token }), 409, "RUN_FINISHED");
  });

  it("stops a RUNNING run's model call; it ends CANCELED with the output so far, billed once", async () => {
    const t = await createTenant();
    const a = await createAgent(t);
    // The local model answers word by word (15 ms apart): a long input makes a reply of a second or so.
    const run = await startRun(t, a, { text: "word ".repeat(40) });
    const delivery = deliverRun(t, run.id);
    await eventually(async () => expect((await getRun(t, run.id)).status).toBe("RUNNING"));
    const requested = await call(`${t.host}/v1/runs/${run.id}/cancel`, { method: "POST", token: t.owner.token });
    expectStatus(requested, 202);
    expect(requested.body.cancel_requested_at).not.toBeNull();
    expect(await delivery).toMatchObject({ acked: true });
    const canceled = await getRun(t, run.id);
    expect(canceled).toMatchObject({ status: "CANCELED", error: { code: "canceled" }, artifact_id: null });
    expect(canceled.output.length).toBeLessThan(`Local model reply to "${"word ".repeat(40)}"`.length);
    expect(await countRows(t, "SELECT count(*) AS n FROM usage_events WHERE source_id = ?", run.id)).toBe(1);
    expect(await debits(t, run.id)).toBe(1);
    expect(await quota(t)).toMatchObject({ reserved: 0 });
    expect((await runEvents(t, run.id)).map((e) => e.type)).toEqual(["run.created", "run.started", "run.canceled"]);
  });
});

describe("idempotency keys", () => {
  it("returns the same run for the same key and body, and 409 for another body", async () => {
    const t = await createTenant();
    const a = await createAgent(t);
    const key = `order-${crypto.randomUUID()}`;
    const body = { agent_id: a.agentId, project_id: a.projectId, input: { text: "hello", tone: "warm" } };
    const first = await call(`${t.host}/v1/runs`, { token: t.owner.token, body, headers: { "idempotency-key": key } });
    expectStatus(first, 202);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    // The same body with its keys in another order is the same request.
    const reordered = { input: { tone: "warm", text: "hello" }, project_id: a.projectId, agent_id: a.agentId };
    const again = await call(`${t.host}/v1/runs`, { token: t.owner.token, body: reordered, headers: { "idempotency-key": key } });
    expectStatus(again, 202);
    expect(again.body.id).toBe(first.body.id);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    const other = await call(`${t.host}/v1/runs`, { token: t.owner.token, body: { ...body, input: { text: "bye" } }, headers: { "idempotency-key": key } });
    expectProblem(other, 409, "IDEMPOTENCY_KEY_REUSED");
    expect(other.body.errors[0]).toMatchObject({ in: "header", field: "idempotency-key" });
    expect(await countRows(t, "SELECT count(*) AS n FROM runs WHERE tenant_id = ?", t.id)).toBe(1);
  });

  it("makes one run of many concurrent requests with one key", async () => {
    const t = await createTenant();
    const a = await createAgent(t);
    const key = crypto.randomUUID();
    const body = { agent_id: a.agentId, project_id: a.projectId, input: { text: "race" } };
    const results = await Promise.all(Array.from({ length: 8 }, () => call(`${t.host}/v1/runs`, { token: t.owner.token, body, headers: { "idempotency-key": key } })));
    for (const r of results) expectStatus(r, 202);
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
    expect(await countRows(t, "SELECT count(*) AS n FROM runs WHERE tenant_id = ?", t.id)).toBe(1);
  });

  it("rejects a malformed key, naming the header", async () => {
    const t = await createTenant();
    const a = await createAgent(t);
    const res = await call(`${t.host}/v1/runs`, { token: t.owner.token, body: { agent_id: a.agentId, project_id: a.projectId, input: { text: "x" } }, headers: { "idempotency-key": "has spaces in it" } });
    expectProblem(res, 400, "VALIDATION_FAILED");
    expect(res.body.errors[0]).toMatchObject({ in: "header", field: "idempotency-key" });
  });
});

describe("creating runs: validation, tenancy, quota", () => {
  it("names the bad field and writes nothing", async () => {
    const t = await createTenant();
    const a = await createAgent(t);
    const other = await createAgent(t);
    const post = (body: Record<string, unknown>) => call(`${t.host}/v1/runs`, { token: t.owner.token, body });
    const cases: [Record<string, unknown>, number, string, string][] = [
      [{ agent_id: a.agentId, project_id: a.projectId, input: {} }, 400, "VALIDATION_FAILED", "input.text"],
      [{ agent_id: a.agentId, project_id: a.projectId, input: { text: "x" }, prompt_key: "Bad Key" }, 400, "VALIDATION_FAILED", "prompt_key"],
      [{ agent_id: a.agentId, project_id: other.projectId, input: { text: "x" } }, 400, "VALIDATION_FAILED", "agent_id"],
      [{ agent_id: "agt_nope", project_id: a.projectId, input: { text: "x" } }, 404, "NOT_FOUND", "agent_id"],
      [{ agent_id: a.agentId, project_id: "prj_nope", input: { text: "x" } }, 404, "NOT_FOUND", "project_id"],
      [{ agent_id: a.agentId, project_id: a.projectId, input: { text: { nested: true } } }, 400, "VALIDATION_FAILED", "input.text"],
      [{ agent_id: a.agentId, project_id: a.projectId, input: { text: "x" }, prompt_key: "absent" }, 404, "NOT_FOUND", "prompt_key"],
    ];
    for (const [body, status, code, field] of cases) {
      const res = await post(body);
      expectProblem(res, status, code);
      expect(res.body.errors.map((e: { field: string }) => e.field), JSON.stringify(body)).toContain(field);
    }
    expect(await countRows(t, "SELECT count(*) AS n FROM runs WHERE tenant_id = ?", t.id)).toBe(0);
  });

  it("keeps runs inside their tenant: another tenant's run is 404 everywhere", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const a = await createAgent(t);
    const run = await startRun(t, a, { text: "mine" });
    for (const [path, method] of [[`/v1/runs/${run.id}`, "GET"], [`/v1/runs/${run.id}/events`, "GET"], [`/v1/runs/${run.id}/cancel`, "POST"]] as const) {
      expectProblem(await call(`${other.host}${path}`, { method, token: other.owner.token }), 404, "NOT_FOUND");
    }
    expectProblem(await call(`${other.host}/v1/runs`, { token: other.owner.token, body: { agent_id: a.agentId, project_id: a.projectId, input: { text: "x" } } }), 404, "NOT_FOUND");
    expect((await call(`${other.host}/v1/runs`, { token: other.owner.token })).body.data).toEqual([]);
    // A message naming the other tenant with this tenant's run id finds nothing there.
    expect(await deliver(QUEUES.runs, { v: 1, tenant_id: other.id, run_id: run.id })).toMatchObject({ acked: true });
    expect(await getRun(t, run.id)).toMatchObject({ status: "PENDING" });
    // And this tenant's credential is not the other tenant's.
    expectProblem(await call(`${other.host}/v1/runs/${run.id}`, { token: t.owner.token }), 401, "INVALID_TOKEN");
  });

  it("refuses a run when the month's tokens are used up, writing nothing; at execution it fails the run", async () => {
    const t = await createTenant();
    const a = await createAgent(t);
    const queued = await startRun(t, a, { text: "queued before the quota ran out" });
    const { monthly_tokens } = (await env.CONTROL_DB.prepare("SELECT monthly_tokens FROM plans WHERE id = 'free'").first<{ monthly_tokens: number }>())!;
    await useTokens(t, monthly_tokens - 10);
    // Room for 10 tokens is not room for a run (its reply alone may use max_tokens): it fails without calling the model.
    expect(await deliverRun(t, queued.id)).toMatchObject({ acked: true });
    expect(await getRun(t, queued.id)).toMatchObject({ status: "FAILED", error: { code: "quota_exceeded" } });
    expect(await quota(t)).toEqual({ used: monthly_tokens - 10, reserved: 0 });
    await useTokens(t, monthly_tokens);
    const refused = await call(`${t.host}/v1/runs`, { token: t.owner.token, body: { agent_id: a.agentId, project_id: a.projectId, input: { text: "one more" } } });
    expectProblem(refused, 429, "QUOTA_EXCEEDED");
    expect(await countRows(t, "SELECT count(*) AS n FROM runs WHERE tenant_id = ?", t.id)).toBe(1);
  });

  it("fails a suspended tenant's queued run instead of running it", async () => {
    const t = await createTenant();
    const a = await createAgent(t);
    const run = await startRun(t, a, { text: "too late" });
    expectStatus(await call(`${PLATFORM}/v1/platform/tenants/${t.id}/suspend`, { method: "POST", token: adminToken() }), 200);
    expect(await deliverRun(t, run.id)).toMatchObject({ acked: true });
    const row = await (await tenantD1(t)).prepare("SELECT status, error_code FROM runs WHERE id = ?").bind(run.id).first();
    expect(row).toEqual({ status: "FAILED", error_code: "tenant_suspended" });
  });
});

describe("listing and following runs", () => {
  it("filters by status and agent, and pages", async () => {
    const t = await createTenant();
    const a = await createAgent(t);
    const b = await createAgent(t);
    const ran = await startRun(t, a, { text: "one" });
    await startRun(t, a, { text: "two" });
    await startRun(t, b, { text: "three" });
    await deliverRun(t, ran.id);
    const list = (q: string) => call(`${t.host}/v1/runs?${q}`, { token: t.owner.token });
    expect((await list(`status=SUCCEEDED`)).body.data.map((r: { id: string }) => r.id)).toEqual([ran.id]);
    expect((await list(`agent_id=${a.agentId}`)).body.data).toHaveLength(2);
    expect((await list(`agent_id=${a.agentId}&status=PENDING`)).body.data).toHaveLength(1);
    const first = await list("limit=2");
    expect(first.body.data).toHaveLength(2);
    const second = await list(`limit=2&cursor=${first.body.next_cursor}`);
    expect(second.body.data).toHaveLength(1);
    expect(second.body.next_cursor).toBeNull();
    expectProblem(await list("status=DONE"), 400, "VALIDATION_FAILED");
  });

  it("streams status changes as they happen, and resumes after Last-Event-ID", async () => {
    const t = await createTenant();
    const a = await createAgent(t);
    const run = await startRun(t, a, { text: "follow me" });
    // Open the stream while the run is PENDING and read its first event; it ends only once the run finishes.
    const res = await SELF.fetch(`${t.host}/v1/runs/${run.id}/events`, { headers: { authorization: `Bearer ${t.owner.token}` } });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("event: run.created")) text += (await reader.read()).value ?? "";
    await deliverRun(t, run.id);
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) text += chunk.value;
    const events = parseEvents(text);
    expect(events.map((e) => e.type)).toEqual(["run.created", "run.started", "run.succeeded"]);
    const resumed = await runEvents(t, run.id, events[0]!.id);
    expect(resumed.map((e) => e.id)).toEqual(events.slice(1).map((e) => e.id));
  });
});
