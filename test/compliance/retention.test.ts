import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { atTime, runCron } from "../clock";
import { addMember, call, createTenant, expectProblem, expectStatus, tenantD1 } from "../harness";
import { createAgent, deliverRun, startRun } from "../runs";
import { deliverWebhook, createEndpoint, inbox } from "../webhooks";

const DAY_MS = 86_400_000;
const count = async (d1: D1Database, sql: string, ...params: unknown[]) => (await d1.prepare(sql).bind(...params).first<{ n: number }>())!.n;

describe("retention", () => {
  it("is the tenant's policy, changed by owners and admins only, each field checked", async () => {
    const t = await createTenant();
    const viewer = await addMember(t, "viewer");
    const defaults = await call(`${t.host}/v1/settings/compliance`, { token: t.owner.token });
    expect(defaults.body).toEqual({ run_retention_days: null, audit_retention_days: 400, webhook_retention_days: 30, uploads_on_erasure: "keep", updated_by: null, updated_at: null });
    expectProblem(await call(`${t.host}/v1/settings/compliance`, { token: viewer.token }), 403, "FORBIDDEN");
    const short = await call(`${t.host}/v1/settings/compliance`, { method: "PATCH", token: t.owner.token, body: { audit_retention_days: 7 } });
    expectProblem(short, 400, "VALIDATION_FAILED");
    expect(short.body.errors[0].field).toBe("audit_retention_days");
    expectProblem(await call(`${t.host}/v1/settings/compliance`, { method: "PATCH", token: t.owner.token, body: {} }), 400, "VALIDATION_FAILED");
    const changed = await call(`${t.host}/v1/settings/compliance`, { method: "PATCH", token: t.owner.token, body: { run_retention_days: 90 } });
    expectStatus(changed, 200);
    expect(changed.body).toMatchObject({ run_retention_days: 90, audit_retention_days: 400, updated_by: t.owner.id });
    const audit = await call(`${t.host}/v1/audit-log?action=compliance.settings_changed`, { token: t.owner.token });
    expect(audit.body.data).toMatchObject([{ details: { run_retention_days: 90 } }]);
  });

  it("deletes audit entries, webhook attempts and finished runs with their outputs once past the policy, at the scheduled sweep", async () => {
    const t = await createTenant();
    const d1 = await tenantD1(t);
    expectStatus(await call(`${t.host}/v1/settings/compliance`, { method: "PATCH", token: t.owner.token, body: { run_retention_days: 30, audit_retention_days: 60, webhook_retention_days: 7 } }), 200);
    const agent = await createAgent(t);
    const run = await startRun(t, agent, { text: "Old news" });
    await deliverRun(t, run.id);
    const artifact = (await call(`${t.host}/v1/runs/${run.id}`, { token: t.owner.token })).body.artifact_id as string;
    const key = (await d1.prepare("SELECT r2_key FROM artifact_versions WHERE artifact_id = ?").bind(artifact).first<{ r2_key: string }>())!.r2_key;
    const pending = await startRun(t, agent, { text: "Not yet run" });
    const box = inbox();
    const endpoint = await createEndpoint(t, { url: box.url, event_types: ["webhook.test"] });
    const test = await call(`${t.host}/v1/webhooks/endpoints/${endpoint.id}/test`, { method: "POST", token: t.owner.token });
    await deliverWebhook(t, test.body.id);
    const entries = await count(d1, "SELECT count(*) AS n FROM audit_log");
    expect(entries).toBeGreaterThan(3);
    expect(await count(d1, "SELECT count(*) AS n FROM webhook_attempts")).toBe(1);

    // Within every period: nothing goes.
    await atTime(Date.now() + 6 * DAY_MS, () => runCron());
    expect(await count(d1, "SELECT count(*) AS n FROM webhook_attempts")).toBe(1);
    // Past a week: the attempts; past 30 days: the finished run and its artifact, bytes and all (the unfinished one stays).
    await atTime(Date.now() + 31 * DAY_MS, () => runCron());
    expect(await count(d1, "SELECT count(*) AS n FROM webhook_attempts")).toBe(0);
    expect(await count(d1, "SELECT count(*) AS n FROM runs WHERE id = ?", run.id)).toBe(0);
    expect(await count(d1, "SELECT count(*) AS n FROM runs WHERE id = ?", pending.id)).toBe(1);
    expect(await count(d1, "SELECT count(*) AS n FROM artifacts WHERE id = ?", artifact)).toBe(0);
    expect(await env.ARTIFACTS.head(key)).toBeNull();
    expect(await count(d1, "SELECT count(*) AS n FROM audit_log")).toBeGreaterThanOrEqual(entries);
    // Past 60 days: the audit entries made then (the sweep's own runs write none).
    await atTime(Date.now() + 61 * DAY_MS, () => runCron());
    expect(await count(d1, "SELECT count(*) AS n FROM audit_log")).toBe(0);
    // Each cron run sweeps every tenant the api project's files have made by then (they share one
    // workerd), three times here, months apart: 2 s alone, 13–21 s late in a loaded run.
  }, 60_000);
});
