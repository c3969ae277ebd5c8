import { createExecutionContext, createMessageBatch, env, getQueueResult } from "cloudflare:test";
import { Ajv2020 } from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import worker, { QUEUES } from "../../src/index";
import { addMember, adminToken, call, createTenant, PLATFORM, eventually, expectProblem, expectStatus, tenantD1, type TestTenant } from "../harness";
import { addDocument, createBase } from "../knowledge";
import { createAgent, deliver, deliverRun, startRun } from "../runs";
import { atTime, runCron } from "../clock";
import { createEndpoint, deliverWebhook, inbox, messagesOf, verify } from "../webhooks";

/** A run made and executed, so `run.*` events are in the outbox and dispatched. */
async function succeededRun(t: TestTenant) {
  const a = await createAgent(t);
  const run = await startRun(t, a, { text: "hello hooks" });
  await deliverRun(t, run.id);
  return run;
}

async function only(t: TestTenant, endpointId: string, type = "run.succeeded") {
  const messages = (await messagesOf(t, endpointId)).filter((m) => m.event_type === type);
  expect(messages).toHaveLength(1);
  return messages[0]!;
}

/** Runs `fn` with the clock moved forward by `ms`. */
const later = <T>(ms: number, fn: () => Promise<T>) => atTime(Date.now() + ms, fn);

describe("webhook delivery", () => {
  it("delivers run.succeeded signed per Standard Webhooks, verified by the standardwebhooks package", async () => {
    const t = await createTenant();
    const box = inbox();
    const endpoint = await createEndpoint(t, { url: box.url, event_types: ["run.succeeded"] });
    expect(endpoint.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    // Stored sealed: the tenant's database alone cannot sign for the endpoint.
    const stored = await (await tenantD1(t)).prepare("SELECT secret FROM webhook_endpoints WHERE id = ?").bind(endpoint.id).first<{ secret: string }>();
    expect(stored!.secret).not.toContain(endpoint.secret.slice(6));
    expect(stored!.secret.startsWith("whsec_")).toBe(false);
    const run = await succeededRun(t);
    const message = await only(t, endpoint.id);
    expect(message).toMatchObject({ status: "pending", attempts: 0 });
    expect((await deliverWebhook(t, message.id)).acked).toBe(true);
    const [delivery] = await box.deliveries();
    expect(delivery!.headers["content-type"]).toBe("application/json");
    expect(delivery!.headers["webhook-id"]).toBe(message.event_id);
    const payload = verify(endpoint.secret, delivery!) as { type: string; data: { id: string; status: string } };
    expect(payload).toMatchObject({ type: "run.succeeded", data: { id: run.id, status: "SUCCEEDED" } });
    expect(() => verify(`whsec_${btoa("x".repeat(32))}`, delivery!)).toThrow();
    const after = await call(`${t.host}/v1/webhooks/messages/${message.id}`, { token: t.owner.token });
    expect(after.body).toMatchObject({ status: "succeeded", attempts: 1, last_status_code: 200 });
    const attempts = await call(`${t.host}/v1/webhooks/messages/${message.id}/attempts`, { token: t.owner.token });
    expect(attempts.body.data).toMatchObject([{ attempt: 1, status_code: 200, response_body: "received", error: null }]);
    // Only the subscribed type became a message.
    expect((await messagesOf(t, endpoint.id)).map((m) => m.event_type)).toEqual(["run.succeeded"]);
  });

  it("retries on the Standard Webhooks schedule, honours Retry-After, and sends once per attempt however often the queue delivers", async () => {
    const t = await createTenant();
    const box = inbox();
    await box.answer({ status: 500 }, { status: 503, headers: { "retry-after": "120" } });
    const endpoint = await createEndpoint(t, { url: box.url, event_types: ["run.succeeded"] });
    await succeededRun(t);
    const message = await only(t, endpoint.id);
    const started = Date.now();
    const first = await deliverWebhook(t, message.id);
    expect(first.retried).toBe(true);
    let now = await call(`${t.host}/v1/webhooks/messages/${message.id}`, { token: t.owner.token });
    expect(now.body).toMatchObject({ status: "pending", attempts: 1, last_status_code: 500 });
    const firstDelay = Date.parse(now.body.next_attempt_at) - started;
    expect(firstDelay).toBeGreaterThanOrEqual(4000);
    expect(firstDelay).toBeLessThan(7000);
    // Delivered again before its time: it waits, nothing is sent.
    expect((await deliverWebhook(t, message.id, 2)).retried).toBe(true);
    expect(await box.deliveries()).toHaveLength(1);
    // Its time come, two deliveries at once make one attempt.
    await later(6000, async () => {
      await Promise.all([deliverWebhook(t, message.id, 2), deliverWebhook(t, message.id, 2)]);
      now = await call(`${t.host}/v1/webhooks/messages/${message.id}`, { token: t.owner.token });
    });
    expect(await box.deliveries()).toHaveLength(2);
    expect(now.body).toMatchObject({ status: "pending", attempts: 2, last_status_code: 503 });
    const askedDelay = Date.parse(now.body.next_attempt_at) - started;
    expect(askedDelay).toBeGreaterThan(120_000);
    expect(askedDelay).toBeLessThan(130_000);
    await later(130_000, () => deliverWebhook(t, message.id, 3));
    expect((await box.deliveries()).map((d) => d.answered)).toEqual([500, 503, 200]);
    const deliveries = await box.deliveries();
    expect(new Set(deliveries.map((d) => d.headers["webhook-id"]))).toEqual(new Set([message.event_id]));
  });

  it("attempts once when one queue batch carries the same message twice", async () => {
    const t = await createTenant();
    const box = inbox();
    const endpoint = await createEndpoint(t, { url: box.url, event_types: ["webhook.test"] });
    const test = await call(`${t.host}/v1/webhooks/endpoints/${endpoint.id}/test`, { method: "POST", token: t.owner.token });
    const body = { v: 1, tenant_id: t.id, message_id: test.body.id };
    const batch = createMessageBatch(QUEUES.webhooks, [
      { id: "a", timestamp: new Date(), attempts: 1, body },
      { id: "b", timestamp: new Date(), attempts: 1, body },
    ]);
    await worker.queue(batch, env);
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.explicitAcks.sort()).toEqual(["a", "b"]);
    expect(await box.deliveries()).toHaveLength(1);
    expect((await call(`${t.host}/v1/webhooks/messages/${test.body.id}`, { token: t.owner.token })).body).toMatchObject({ status: "succeeded", attempts: 1 });
  });

  it("disables an endpoint that answers 410, tells the tenant's other endpoints, and keeps its messages", async () => {
    const t = await createTenant();
    const gone = inbox();
    const watcher = inbox();
    await gone.answer({ status: 410 }, { status: 410 });
    const endpoint = await createEndpoint(t, { url: gone.url, event_types: ["run.succeeded", "webhook.test"] });
    const other = await createEndpoint(t, { url: watcher.url, event_types: ["webhook.endpoint_disabled"] });
    await succeededRun(t);
    const message = await only(t, endpoint.id);
    const test = await call(`${t.host}/v1/webhooks/endpoints/${endpoint.id}/test`, { method: "POST", token: t.owner.token });
    // Two deliveries answered 410 at once: the endpoint is disabled once, with one event and one audit entry.
    const [first, second] = await Promise.all([deliverWebhook(t, message.id), deliverWebhook(t, test.body.id)]);
    expect([first.acked, second.acked]).toEqual([true, true]);
    expect((await call(`${t.host}/v1/webhooks/endpoints/${endpoint.id}`, { token: t.owner.token })).body).toMatchObject({ disabled: true, disabled_reason: "gone" });
    expect((await call(`${t.host}/v1/webhooks/messages/${message.id}`, { token: t.owner.token })).body).toMatchObject({ status: "failed", last_status_code: 410 });
    const notice = await only(t, other.id, "webhook.endpoint_disabled");
    await deliverWebhook(t, notice.id);
    expect(JSON.parse((await watcher.deliveries())[0]!.body)).toMatchObject({ type: "webhook.endpoint_disabled", data: { id: endpoint.id, reason: "gone" } });
    const audit = await call(`${t.host}/v1/audit-log?resource_id=${endpoint.id}`, { token: t.owner.token });
    expect(audit.body.data.filter((e: { action: string }) => e.action === "webhook_endpoint.disabled")).toHaveLength(1);
    // Replaying needs the endpoint enabled; after enabling, recovery sends the failed message again.
    expectProblem(await call(`${t.host}/v1/webhooks/messages/${message.id}/replay`, { method: "POST", token: t.owner.token }), 409, "CONFLICT");
    expectStatus(await call(`${t.host}/v1/webhooks/endpoints/${endpoint.id}/enable`, { method: "POST", token: t.owner.token }), 200);
    const recovered = await call(`${t.host}/v1/webhooks/endpoints/${endpoint.id}/recover`, { token: t.owner.token, body: { since: new Date(Date.now() - 60_000).toISOString() } });
    expect(recovered.body).toEqual({ requeued: 2 });
    await deliverWebhook(t, message.id);
    expect((await call(`${t.host}/v1/webhooks/messages/${message.id}`, { token: t.owner.token })).body).toMatchObject({ status: "succeeded", attempts: 2 });
  });

  it("marks a message failed from the dead-letter queue, and replays it with the same webhook-id", async () => {
    const t = await createTenant();
    const box = inbox();
    const endpoint = await createEndpoint(t, { url: box.url, event_types: ["run.succeeded"] });
    await succeededRun(t);
    const message = await only(t, endpoint.id);
    expect((await deliver(QUEUES.webhooksDead, { v: 1, tenant_id: t.id, message_id: message.id })).acked).toBe(true);
    expect((await call(`${t.host}/v1/webhooks/messages/${message.id}`, { token: t.owner.token })).body.status).toBe("failed");
    const replayed = await call(`${t.host}/v1/webhooks/messages/${message.id}/replay`, { method: "POST", token: t.owner.token });
    expect(replayed.status).toBe(202);
    await deliverWebhook(t, message.id);
    const [delivery] = await box.deliveries();
    expect(delivery!.headers["webhook-id"]).toBe(message.event_id);
    expect((await call(`${t.host}/v1/webhooks/messages/${message.id}`, { token: t.owner.token })).body.status).toBe("succeeded");
  });

  it("disables an endpoint that has failed for 5 days without a success", async () => {
    const t = await createTenant();
    const box = inbox();
    await box.answer({ status: 500 }, { status: 500 });
    const endpoint = await createEndpoint(t, { url: box.url, event_types: ["run.succeeded"] });
    await succeededRun(t);
    const message = await only(t, endpoint.id);
    await deliverWebhook(t, message.id);
    expect((await call(`${t.host}/v1/webhooks/endpoints/${endpoint.id}`, { token: t.owner.token })).body.failing_since).not.toBeNull();
    await later(5 * 24 * 3600 * 1000 + 60_000, () => deliverWebhook(t, message.id, 2));
    expect((await call(`${t.host}/v1/webhooks/endpoints/${endpoint.id}`, { token: t.owner.token })).body).toMatchObject({ disabled: true, disabled_reason: "failing" });
    expect((await call(`${t.host}/v1/webhooks/messages/${message.id}`, { token: t.owner.token })).body.status).toBe("failed");
  });

  it("signs with both secrets for a day after a rotation, and with the new one only after revoking the old", async () => {
    const t = await createTenant();
    const box = inbox();
    const endpoint = await createEndpoint(t, { url: box.url, event_types: ["webhook.test"] });
    const rotated = await call(`${t.host}/v1/webhooks/endpoints/${endpoint.id}/rotate-secret`, { method: "POST", token: t.owner.token });
    expectStatus(rotated, 200);
    expect(rotated.body.secret).not.toBe(endpoint.secret);
    const test = await call(`${t.host}/v1/webhooks/endpoints/${endpoint.id}/test`, { method: "POST", token: t.owner.token });
    await deliverWebhook(t, test.body.id);
    const [during] = await box.deliveries();
    expect(during!.headers["webhook-signature"]!.split(" ")).toHaveLength(2);
    verify(endpoint.secret, during!);
    verify(rotated.body.secret, during!);
    const revoked = await call(`${t.host}/v1/webhooks/endpoints/${endpoint.id}/rotate-secret`, { token: t.owner.token, body: { revoke_previous: true } });
    const again = await call(`${t.host}/v1/webhooks/endpoints/${endpoint.id}/test`, { method: "POST", token: t.owner.token });
    await deliverWebhook(t, again.body.id);
    const after = (await box.deliveries())[1]!;
    expect(after.headers["webhook-signature"]!.split(" ")).toHaveLength(1);
    verify(revoked.body.secret, after);
    expect(() => verify(rotated.body.secret, after)).toThrow();
  });

  it("treats a redirect as a failure without following it, and refuses an oversized payload at the producer", async () => {
    const t = await createTenant();
    const box = inbox();
    await box.answer({ status: 302, headers: { location: "https://elsewhere.example.com/" } });
    const endpoint = await createEndpoint(t, { url: box.url });
    const test = await call(`${t.host}/v1/webhooks/endpoints/${endpoint.id}/test`, { method: "POST", token: t.owner.token });
    expect((await deliverWebhook(t, test.body.id)).retried).toBe(true);
    expect(await box.deliveries()).toHaveLength(1);
    const after = await call(`${t.host}/v1/webhooks/messages/${test.body.id}`, { token: t.owner.token });
    expect(after.body).toMatchObject({ status: "pending", last_status_code: 302, last_error: "redirect to https://elsewhere.example.com/ not followed" });
    // An event over 256 KiB becomes a failed message that says why; nothing is sent.
    await (await tenantD1(t))
      .prepare("INSERT INTO outbox (id, tenant_id, type, subject_type, subject_id, data) VALUES (?, ?, 'webhook.test', 'webhook_endpoint', ?, ?)")
      .bind(`evt_${"1".repeat(26)}`, t.id, endpoint.id, JSON.stringify({ endpoint_id: endpoint.id, message: "x".repeat(300 * 1024) }))
      .run();
    // Any write dispatches the tenant's unpublished events.
    await call(`${t.host}/v1/projects`, { token: t.owner.token, body: { name: "a write" } });
    const big = await eventually(async () => {
      const found = (await messagesOf(t, endpoint.id)).find((m) => m.event_id === `evt_${"1".repeat(26)}`);
      if (!found) throw new Error("not dispatched yet");
      return found;
    });
    expect(big).toMatchObject({ status: "failed" });
    expect(big.last_error).toMatch(/^payload_too_large/);
  });

  it("holds deliveries to an endpoint's own rate limit, counting no attempt for the ones that wait", async () => {
    const t = await createTenant();
    const box = inbox();
    const endpoint = await createEndpoint(t, { url: box.url, rate_limit_per_second: 2 });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await call(`${t.host}/v1/webhooks/endpoints/${endpoint.id}/test`, { method: "POST", token: t.owner.token })).body.id);
    // The clock stands still, so all three fall in one second however slow the machine is.
    const results = await later(0, () => Promise.all(ids.map((id) => deliverWebhook(t, id))));
    expect(results.filter((r) => r.acked)).toHaveLength(2);
    expect(await box.deliveries()).toHaveLength(2);
    const waiting = results.findIndex((r) => r.retried);
    expect((await call(`${t.host}/v1/webhooks/messages/${ids[waiting]}`, { token: t.owner.token })).body).toMatchObject({ status: "pending", attempts: 0 });
  });

  it("delivers membership changes (made in the control database) as member.* events, once each", async () => {
    const t = await createTenant();
    const box = inbox();
    const endpoint = await createEndpoint(t, { url: box.url, event_types: ["member.joined", "member.role_changed", "member.removed"] });
    const sam = await addMember(t, "editor", `sam-${crypto.randomUUID().slice(0, 6)}@example.test`);
    expectStatus(await call(`${t.host}/v1/members/${sam.id}`, { method: "PATCH", token: t.owner.token, body: { role: "admin" } }), 200);
    // A refused change (the last owner cannot go) writes no event.
    expectProblem(await call(`${t.host}/v1/members/${t.owner.id}`, { method: "DELETE", token: t.owner.token }), 409, "LAST_OWNER");
    expectStatus(await call(`${t.host}/v1/members/${sam.id}`, { method: "DELETE", token: t.owner.token }), 204);
    // Dispatched after each response, as the request's own waitUntil.
    const messages = await eventually(async () => {
      const listed = await messagesOf(t, endpoint.id);
      expect(listed.map((m) => m.event_type).sort()).toEqual(["member.joined", "member.removed", "member.role_changed"]);
      return listed;
    });
    for (const m of messages) await deliverWebhook(t, m.id);
    const payloads = (await box.deliveries()).map((d) => verify(endpoint.secret, d) as { type: string; data: Record<string, unknown> });
    const byType = Object.fromEntries(payloads.map((p) => [p.type, p.data]));
    expect(byType["member.joined"]).toMatchObject({ user_id: sam.id, email: sam.email, role: "editor" });
    expect(byType["member.role_changed"]).toMatchObject({ user_id: sam.id, role: "admin", previous_role: "editor" });
    expect(byType["member.removed"]).toMatchObject({ user_id: sam.id, role: "admin" });
    // Relayed once: the cron's relay finds nothing left to copy.
    await runCron();
    expect(await messagesOf(t, endpoint.id)).toHaveLength(3);
  });

  it("abandons an attempt the endpoint does not answer in time, and tries it again later", async () => {
    const t = await createTenant();
    const box = inbox();
    const endpoint = await createEndpoint(t, { url: box.url, event_types: ["webhook.test"] });
    // The tests' config shortens the 15 s time-out to 2 s; this endpoint takes 10 s to answer.
    await box.answer({ status: 200, hang_ms: 10_000 });
    const test = await call(`${t.host}/v1/webhooks/endpoints/${endpoint.id}/test`, { method: "POST", token: t.owner.token });
    const started = Date.now();
    expect((await deliverWebhook(t, test.body.id)).retried).toBe(true);
    expect(Date.now() - started).toBeLessThan(9000);
    const attempts = await call(`${t.host}/v1/webhooks/messages/${test.body.id}/attempts`, { token: t.owner.token });
    expect(attempts.body.data).toMatchObject([{ attempt: 1, status_code: null, error: "no answer within 2 s" }]);
    expect(attempts.body.data[0].duration_ms).toBeGreaterThanOrEqual(1900);
    expect((await call(`${t.host}/v1/webhooks/messages/${test.body.id}`, { token: t.owner.token })).body).toMatchObject({ status: "pending", attempts: 1 });
  });

  it("sends nothing for a suspended tenant, keeping its messages failed to recover once it is active", async () => {
    const t = await createTenant();
    const box = inbox();
    const endpoint = await createEndpoint(t, { url: box.url, event_types: ["webhook.test"] });
    const test = await call(`${t.host}/v1/webhooks/endpoints/${endpoint.id}/test`, { method: "POST", token: t.owner.token });
    expectStatus(await call(`${PLATFORM}/v1/platform/tenants/${t.id}/suspend`, { method: "POST", token: adminToken() }), 200);
    expect((await deliverWebhook(t, test.body.id)).acked).toBe(true);
    expect(await box.deliveries()).toEqual([]);
    expectStatus(await call(`${PLATFORM}/v1/platform/tenants/${t.id}/reactivate`, { method: "POST", token: adminToken() }), 200);
    expect((await call(`${t.host}/v1/webhooks/messages/${test.body.id}`, { token: t.owner.token })).body).toMatchObject({ status: "failed", attempts: 0, last_error: expect.stringMatching(/^tenant_suspended/) });
    const recovered = await call(`${t.host}/v1/webhooks/endpoints/${endpoint.id}/recover`, { token: t.owner.token, body: { since: new Date(Date.now() - 60_000).toISOString() } });
    expect(recovered.body).toEqual({ requeued: 1 });
    await deliverWebhook(t, test.body.id);
    expect(await box.deliveries()).toHaveLength(1);
  });

  it("recovers an outage's worth of failed messages in one call", async () => {
    const t = await createTenant();
    const box = inbox();
    const endpoint = await createEndpoint(t, { url: box.url, event_types: ["webhook.test"] });
    // Days of an endpoint being down leave hundreds of failed messages (written here as the consumer would have).
    const db = await tenantD1(t);
    const payload = JSON.stringify({ type: "webhook.test", timestamp: new Date().toISOString(), data: { endpoint_id: endpoint.id, message: "outage" } });
    await db.batch(
      Array.from({ length: 250 }, (_, i) =>
        db
          .prepare("INSERT INTO webhook_messages (id, tenant_id, endpoint_id, event_id, event_type, payload, status, attempts, last_error) VALUES (?, ?, ?, ?, 'webhook.test', ?, 'failed', 8, 'HTTP 503')")
          .bind(`whm_outage${String(i).padStart(4, "0")}`, t.id, endpoint.id, `evt_outage${i}`, payload),
      ),
    );
    const recovered = await call(`${t.host}/v1/webhooks/endpoints/${endpoint.id}/recover`, { token: t.owner.token, body: { since: new Date(Date.now() - 60_000).toISOString() } });
    expectStatus(recovered, 202);
    expect(recovered.body).toEqual({ requeued: 250 });
    const pending = await db.prepare("SELECT count(*) AS n FROM webhook_messages WHERE endpoint_id = ? AND status = 'pending'").bind(endpoint.id).first<{ n: number }>();
    expect(pending!.n).toBe(250);
  });

  it("sends only the events an endpoint's filter matches", async () => {
    const t = await createTenant();
    const a = await createAgent(t);
    const box = inbox();
    const endpoint = await createEndpoint(t, { url: box.url, filter: { agent_id: a.agentId, status: "SUCCEEDED" } });
    const run = await startRun(t, a, { text: "filtered" });
    await deliverRun(t, run.id);
    const other = await createAgent(t);
    const elsewhere = await startRun(t, other, { text: "not for this endpoint" });
    await deliverRun(t, elsewhere.id);
    expect((await messagesOf(t, endpoint.id)).map((m) => m.event_type)).toEqual(["run.succeeded"]);
  });
});

describe("a tenant's first endpoint", () => {
  it("gets its first event from the write that made it, however long the tenant's history before the endpoint", async () => {
    const t = await createTenant();
    const a = await createAgent(t);
    // History: every write leaves events that no endpoint existed to want — here a year of audit
    // entries (each with its event, by the log's trigger), more than a few dispatch passes take.
    const db = await tenantD1(t);
    await db
      .prepare(
        `INSERT INTO audit_log (id, tenant_id, actor_type, actor_id, action, resource_type, resource_id, request_id, created_at)
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)
         SELECT 'aud_0' || printf('%025d', i), ?, 'user', ?, 'project.updated', 'project', ?, 'req_history', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || i || ' hours') FROM n`,
      )
      .bind(t.id, t.owner.id, a.projectId)
      .run();
    expect((await db.prepare("SELECT count(*) AS n FROM outbox WHERE published_at IS NULL").first<{ n: number }>())!.n).toBeGreaterThan(400);
    const box = inbox();
    const endpoint = await createEndpoint(t, { url: box.url, event_types: ["run.created"] });
    const run = await startRun(t, a, { text: "first" });
    const messages = await messagesOf(t, endpoint.id);
    expect(messages.map((m) => m.event_type)).toEqual(["run.created"]);
    expect(await db.prepare("SELECT subject_id FROM outbox WHERE id = ?").bind(messages[0]!.event_id).first()).toEqual({ subject_id: run.id });
    expect((await db.prepare("SELECT count(*) AS n FROM outbox WHERE published_at IS NULL").first<{ n: number }>())!.n).toBe(0);
  });
});

describe("the cron sweep", () => {
  it("dispatches events no write dispatched, so an event is never left behind", async () => {
    const t = await createTenant();
    const box = inbox();
    const endpoint = await createEndpoint(t, { url: box.url, event_types: ["webhook.test"] });
    // An event committed by a write whose dispatch never ran (its isolate died after the commit).
    await (await tenantD1(t))
      .prepare("INSERT INTO outbox (id, tenant_id, type, subject_type, subject_id, data) VALUES (?, ?, 'webhook.test', 'webhook_endpoint', ?, ?)")
      .bind(`evt_${"2".repeat(26)}`, t.id, endpoint.id, JSON.stringify({ endpoint_id: endpoint.id, message: "swept" }))
      .run();
    await runCron();
    const [message] = await messagesOf(t, endpoint.id);
    expect(message).toMatchObject({ event_id: `evt_${"2".repeat(26)}`, status: "pending" });
    await deliverWebhook(t, message!.id);
    expect(JSON.parse((await box.deliveries())[0]!.body).data.message).toBe("swept");
  });

  it("relays membership events a request left in the control database, under their own id", async () => {
    const t = await createTenant();
    const box = inbox();
    const endpoint = await createEndpoint(t, { url: box.url, event_types: ["member.removed"] });
    // A removal committed in the control database whose relay never ran (its isolate died after the commit).
    const data = { user_id: `usr_${"3".repeat(26)}`, email: "gone@example.test", name: "Gone", role: "viewer", joined_at: new Date().toISOString() };
    await env.CONTROL_DB.prepare("INSERT INTO outbox (id, tenant_id, type, subject_type, subject_id, data) VALUES (?, ?, 'member.removed', 'member', ?, ?)")
      .bind(`evt_${"3".repeat(26)}`, t.id, data.user_id, JSON.stringify(data))
      .run();
    for (let i = 0; i < 2; i++) {
      await runCron();
    }
    const messages = await messagesOf(t, endpoint.id);
    expect(messages).toMatchObject([{ event_id: `evt_${"3".repeat(26)}`, event_type: "member.removed" }]);
    await deliverWebhook(t, messages[0]!.id);
    expect(JSON.parse((await box.deliveries())[0]!.body).data).toEqual(data);
  });
});

describe("webhook endpoints", () => {
  it("refuse URLs that could reach inside, naming url", async () => {
    const t = await createTenant();
    for (const url of ["http://example.com/hook", "https://127.0.0.1/hook", "https://[::1]/hook", "https://localhost/hook", "https://db.internal/x", "https://printer.local/x", "https://acme.localhost/x", "https://u:p@example.com/x", "not a url"]) {
      const res = await call(`${t.host}/v1/webhooks/endpoints`, { token: t.owner.token, body: { url } });
      expectProblem(res, 400, "VALIDATION_FAILED");
      expect(res.body.errors[0].field, url).toBe("url");
    }
    const unknownType = await call(`${t.host}/v1/webhooks/endpoints`, { token: t.owner.token, body: { url: "https://hooks.example.com/x", event_types: ["run.exploded"] } });
    expect(unknownType.body.errors[0].field).toBe("event_types");
  });

  it("are another tenant's 404 (with their messages and attempts), and only owners and admins manage them", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const box = inbox();
    const endpoint = await createEndpoint(t, { url: box.url, event_types: ["webhook.test"] });
    const test = await call(`${t.host}/v1/webhooks/endpoints/${endpoint.id}/test`, { method: "POST", token: t.owner.token });
    await deliverWebhook(t, test.body.id);
    for (const path of [`/v1/webhooks/endpoints/${endpoint.id}`, `/v1/webhooks/messages/${test.body.id}`, `/v1/webhooks/messages/${test.body.id}/attempts`]) {
      expectProblem(await call(`${other.host}${path}`, { token: other.owner.token }), 404, "NOT_FOUND");
    }
    const listed = await call(`${t.host}/v1/webhooks/endpoints`, { token: t.owner.token });
    expect(listed.body.data.map((e: { id: string; secret?: string }) => [e.id, e.secret])).toEqual([[endpoint.id, undefined]]);
    const editor = await addMember(t, "editor");
    expectProblem(await call(`${t.host}/v1/webhooks/endpoints`, { token: editor.token }), 403, "FORBIDDEN");
  });

  it("list every event type with a schema that the platform's own events satisfy", async () => {
    const t = await createTenant();
    const types = await call(`${t.host}/v1/webhooks/event-types`, { token: t.owner.token });
    const catalogue = new Map<string, Record<string, unknown>>(types.body.data.map((e: { type: string; schema: Record<string, unknown> }) => [e.type, e.schema]));
    const ajv = new Ajv2020({ strict: false });
    for (const e of types.body.data) expect(ajv.validate(e.schema, e.example), `${e.type} example`).toBe(true);
    // Make events of every kind the platform writes today, then check each against the catalogue.
    await succeededRun(t);
    const { baseId } = await createBase(t);
    const doc = await addDocument(t, baseId, "hooks.md", "Events for the catalogue.");
    await call(`${t.host}/v1/knowledge-bases/${baseId}/documents/${doc.id}`, { method: "PATCH", token: t.owner.token, body: { attributes: { a: 1 } } });
    await call(`${t.host}/v1/knowledge-bases/${baseId}/documents/${doc.id}`, { method: "DELETE", token: t.owner.token });
    const conv = await call(`${t.host}/v1/conversations`, { token: t.owner.token, body: { project_id: (await createBase(t)).projectId, title: "Hooks" } });
    await call(`${t.host}/v1/conversations/${conv.body.id}`, { method: "PATCH", token: t.owner.token, body: { title: "Hooked" } });
    await call(`${t.host}/v1/conversations/${conv.body.id}`, { method: "DELETE", token: t.owner.token });
    // Content operations: a campaign through its states, a post through review and schedule, a comment.
    const projectId = (await createBase(t)).projectId;
    const campaign = await call(`${t.host}/v1/campaigns`, { token: t.owner.token, body: { project_id: projectId, name: "Hooks" } });
    await call(`${t.host}/v1/campaigns/${campaign.body.id}`, { method: "PATCH", token: t.owner.token, body: { goal: "Reach" } });
    for (const action of ["activate", "pause", "complete", "archive"]) await call(`${t.host}/v1/campaigns/${campaign.body.id}/${action}`, { method: "POST", token: t.owner.token });
    await call(`${t.host}/v1/projects/${projectId}/approval-policy`, { method: "PUT", token: t.owner.token, body: { mode: "required" } });
    const post = await call(`${t.host}/v1/posts`, { token: t.owner.token, body: { project_id: projectId, title: "Hooked", variants: [{ channel: "linkedin", text: "Hello" }] } });
    const postAction = (action: string, body?: Record<string, unknown>) => call(`${t.host}/v1/posts/${post.body.id}/${action}`, { method: "POST", token: t.owner.token, ...(body && { body }) });
    await postAction("submit");
    await postAction("request-changes", { revision: 1, comment: "More" });
    await call(`${t.host}/v1/posts/${post.body.id}`, { method: "PATCH", token: t.owner.token, body: { title: "Hooked again" } });
    await postAction("submit");
    await postAction("approve", { revision: 2 });
    await call(`${t.host}/v1/projects/${projectId}/channels`, { token: t.owner.token, body: { channel: "linkedin", name: "Hooks", credentials: {} } });
    expectStatus(await postAction("schedule", { at: new Date(Date.now() + 3600_000).toISOString() }), 200);
    await postAction("unschedule");
    await call(`${t.host}/v1/posts/${post.body.id}/comments`, { token: t.owner.token, body: { body: "Nice", anchor: { channel: "linkedin", start: 0, end: 5 } } });
    await postAction("archive");
    await call(`${t.host}/v1/campaigns/${campaign.body.id}`, { method: "DELETE", token: t.owner.token });
    const member = await addMember(t, "viewer");
    await call(`${t.host}/v1/members/${member.id}`, { method: "PATCH", token: t.owner.token, body: { role: "editor" } });
    expectStatus(await call(`${t.host}/v1/members/${member.id}`, { method: "PATCH", token: t.owner.token, body: { role: "client", projects: [projectId] } }), 200);
    await call(`${t.host}/v1/members/${member.id}`, { method: "DELETE", token: t.owner.token });
    const rows = await (await tenantD1(t)).prepare("SELECT type, data, created_at FROM outbox").all<{ type: string; data: string; created_at: string }>();
    expect(new Set(rows.results.map((r) => r.type.split(".")[0]))).toEqual(new Set(["run", "artifact", "document", "conversation", "member", "campaign", "post", "comment", "audit"]));
    // Every audit entry is also an audit.entry_created event, under the entry's own time-ordered id.
    const audited = await (await tenantD1(t)).prepare("SELECT id FROM audit_log").all<{ id: string }>();
    const auditEvents = rows.results.filter((r) => r.type === "audit.entry_created").map((r) => JSON.parse(r.data).id);
    expect(auditEvents.sort()).toEqual(audited.results.map((r) => r.id).sort());
    // Every catalogued type of the kinds made here was written.
    const written = new Set(rows.results.map((r) => r.type));
    // (post.published, post.failed and post.review_reminder come from the queue and the cron: publishing.test.ts and content.test.ts check them against the catalogue.)
    expect([...catalogue.keys()].filter((type) => /^(campaign|post|comment|member|audit)\./.test(type) && !/^post\.(published|failed|review_reminder)$/.test(type) && !written.has(type))).toEqual([]);
    for (const row of rows.results) {
      const schema = catalogue.get(row.type);
      expect(schema, row.type).toBeDefined();
      expect(ajv.validate(schema!, { type: row.type, timestamp: row.created_at, data: JSON.parse(row.data) }), `${row.type}: ${ajv.errorsText()}`).toBe(true);
    }
  });
});
