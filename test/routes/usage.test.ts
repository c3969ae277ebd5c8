import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { tenantDb } from "../../src/db/router";
import { createConversation } from "../conversations";
import { call, createKey, createTenant, eventually, expectProblem, expectStatus, meterCall, type TestTenant } from "../harness";

async function bindingOf(t: TestTenant) {
  return (await env.CONTROL_DB.prepare("SELECT db_binding FROM tenants WHERE id = ?").bind(t.id).first<{ db_binding: string }>())!.db_binding;
}

async function usage(t: TestTenant, query: string, until: (body: { total: { calls: number } }) => boolean = () => true) {
  return eventually(async () => {
    const res = await call(`${t.host}/v1/usage?${query}`, { token: t.owner.token });
    expectStatus(res, 200);
    expect(until(res.body)).toBe(true);
    return res.body;
  });
}

describe("usage metering", () => {
  it("records every assistant reply: who, project, model, provider, tokens and cost", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    const { key } = await createKey(t, t.owner.token, ["conversations:write", "conversations:read"]);
    const res = await call(`${conv.url}/messages`, { token: key, body: { content: "meter me", reply: true }, headers: { accept: "text/event-stream" } });
    const done = JSON.parse(/event: done\ndata: (.*)/.exec(res.text)![1]!).message;

    const byModel = await usage(t, "group_by=model", (b) => b.total.calls === 1);
    expect(byModel.data).toEqual([{ key: done.usage.model, calls: 1, tokens_in: done.usage.tokens_in, tokens_out: done.usage.tokens_out, cost_micros: 0 }]);
    expect((await usage(t, "group_by=project")).data[0].key).toBe(conv.projectId);
    expect((await usage(t, "group_by=user")).data[0].key).toBe(t.owner.id);
    const event = await tenantDb(env, { id: t.id, dbBinding: await bindingOf(t) }).query.usageEvents.findFirst();
    expect(event).toMatchObject({ userId: t.owner.id, apiKeyId: expect.stringMatching(/^key_/), source: "chat", sourceId: done.id, provider: "local" });
  });

  it("records a reply that outlives its request (no streaming) just the same", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    const posted = await call(`${conv.url}/messages`, { token: t.owner.token, body: { content: "reply later", reply: true } });
    expectStatus(posted, 201);
    const byModel = await usage(t, "group_by=model", (b) => b.total.calls === 1);
    expect(byModel.total.calls).toBe(1);
    await eventually(async () => expect((await call(conv.url, { token: t.owner.token })).body.message_count).toBe(2));
  });

  it("rolls calls up by day and prices them from the price table", async () => {
    const t = await createTenant();
    const base = { projectId: "prj_x", provider: "workers-ai" };
    await meterCall(t, { ...base, model: "@cf/meta/llama-3.1-8b-instruct", tokensIn: 1_000_000, tokensOut: 0, at: new Date("2026-03-01T10:00:00Z") });
    await meterCall(t, { ...base, model: "@cf/meta/llama-3.1-8b-instruct", tokensIn: 0, tokensOut: 1_000_000, at: new Date("2026-03-01T23:00:00Z") });
    await meterCall(t, { ...base, model: "@cf/unknown/model", tokensIn: 10, tokensOut: 10, at: new Date("2026-03-02T00:00:00Z") });
    const byDay = await usage(t, "from=2026-03-01&to=2026-03-31&group_by=day");
    expect(byDay.data).toEqual([
      { key: "2026-03-01", calls: 2, tokens_in: 1_000_000, tokens_out: 1_000_000, cost_micros: 282_000 + 827_000 },
      { key: "2026-03-02", calls: 1, tokens_in: 10, tokens_out: 10, cost_micros: 26 },
    ]);
    expect(byDay.total).toEqual({ calls: 3, tokens_in: 1_000_010, tokens_out: 1_000_010, cost_micros: 1_109_026 });
    const outside = await usage(t, "from=2026-04-01&to=2026-04-30");
    expect(outside).toMatchObject({ data: [], total: { calls: 0, cost_micros: 0 } });
  });

  it("names a bad range, and shows nothing of another tenant", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const reversed = await call(`${a.host}/v1/usage?from=2026-05-02&to=2026-05-01`, { token: a.owner.token });
    expectProblem(reversed, 400, "VALIDATION_FAILED");
    expect(reversed.body.errors[0].field).toBe("from");
    const junk = await call(`${a.host}/v1/usage?from=yesterday`, { token: a.owner.token });
    expectProblem(junk, 400, "VALIDATION_FAILED");
    expect(junk.body.errors[0]).toMatchObject({ in: "query", field: "from" });
    // Shaped like a day but not one (found by the fuzzer: it was a 500 when only `to` was given).
    for (const q of ["to=8407-35-39", "from=2026-02-30&to=2026-03-01", "to=2026-13-01"]) {
      const unreal = await call(`${a.host}/v1/usage?${q}`, { token: a.owner.token });
      expectProblem(unreal, 400, "VALIDATION_FAILED");
      expect(unreal.body.errors[0].in).toBe("query");
    }
    await meterCall(a, { projectId: "p", model: "m", provider: "local", tokensIn: 5, tokensOut: 5 });
    expect((await usage(b, "")).total.calls).toBe(0);
    expect((await usage(a, "")).total.calls).toBe(1);
  });

  it("shows the plan's limits beside this month's use", async () => {
    const t = await createTenant();
    const conversation = await createConversation(t);
    const artifact = await call(`${t.host}/v1/artifacts?project_id=${conversation.projectId}&kind=post&name=a`, { token: t.owner.token, rawBody: "x".repeat(1234), headers: { "content-type": "text/plain" } });
    expectStatus(artifact, 201);
    await call(`${t.host}/v1/invitations`, { token: t.owner.token, body: { email: "x@example.test", role: "viewer" } });
    await meterCall(t, { projectId: "p", model: "m", provider: "local", tokensIn: 30, tokensOut: 12 });
    const res = await call(`${t.host}/v1/plan`, { token: t.owner.token });
    expectStatus(res, 200);
    const plan = (await env.CONTROL_DB.prepare("SELECT * FROM plans WHERE id = 'free'").first<Record<string, number>>())!;
    expect(res.body).toEqual({
      plan: { id: "free", name: "Free" },
      limits: {
        requests_per_minute: plan.requests_per_minute,
        member_requests_per_minute: plan.member_requests_per_minute,
        monthly_tokens: plan.monthly_tokens,
        seats: plan.seats,
        projects: plan.projects,
        storage_bytes: plan.storage_bytes,
      },
      usage: { month: new Date().toISOString().slice(0, 7), calls: 1, tokens_in: 30, tokens_out: 12, tokens: 42, cost_micros: 0, seats: 2, projects: 1, storage_bytes: 1234 },
    });
  });
});
