import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { LOCAL_FAILURE_TRIGGER } from "../../src/providers/ai/local";
import { createConversation } from "../conversations";
import { call, createTenant, eventually, expectProblem, expectStatus, quota, useTokens } from "../harness";
import { open } from "../ws";

const monthlyTokens = async () => (await env.CONTROL_DB.prepare("SELECT monthly_tokens FROM plans WHERE id = 'free'").first<{ monthly_tokens: number }>())!.monthly_tokens;

async function replyAndWait(url: string, token: string, content: string) {
  const res = await call(`${url}/messages`, { token, body: { content, reply: true }, headers: { accept: "text/event-stream" } });
  return res;
}

describe("the monthly token quota", () => {
  it("reserves before the model runs and settles to the tokens really used", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    const res = await replyAndWait(conv.url, t.owner.token, "count me");
    expectStatus(res, 200);
    const done = JSON.parse(/event: done\ndata: (.*)/.exec(res.text)![1]!).message;
    await eventually(async () => expect(await quota(t)).toEqual({ used: done.usage.tokens_in + done.usage.tokens_out, reserved: 0 }));
  });

  it("releases the reservation when the model fails", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    const res = await replyAndWait(conv.url, t.owner.token, `oops ${LOCAL_FAILURE_TRIGGER}`);
    expect(res.text).toContain("event: error");
    await eventually(async () => expect(await quota(t)).toEqual({ used: 0, reserved: 0 }));
  });

  it("refuses a reply that would pass the quota with 429 QUOTA_EXCEEDED, storing nothing", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    await useTokens(t, (await monthlyTokens()) - 100);
    const res = await call(`${conv.url}/messages`, { token: t.owner.token, body: { content: "one more?", reply: true } });
    expectProblem(res, 429, "QUOTA_EXCEEDED");
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
    expect((await call(`${conv.url}/messages`, { token: t.owner.token })).body.data).toEqual([]);
    // Messages that ask for no reply use no tokens and still go through.
    expectStatus(await call(`${conv.url}/messages`, { token: t.owner.token, body: { content: "just a note" } }), 201);
  });

  it("lets concurrent replies reserve only what is left", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    // Room for two reservations of ~1,030 tokens, not three.
    await useTokens(t, (await monthlyTokens()) - 2100);
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => call(`${conv.url}/messages`, { token: t.owner.token, body: { content: `q${i}`, reply: true } })));
    expect(results.map((r) => r.status).sort()).toEqual([201, 201, 429, 429, 429, 429]);
    const q = await quota(t);
    expect(q.used + q.reserved).toBeLessThanOrEqual(await monthlyTokens());
  });

  it("answers a socket's reply request past the quota with an error frame", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    await useTokens(t, await monthlyTokens());
    const s = await open(`${conv.url}/connect`, t.owner.token);
    s.send({ type: "message", content: "hello?", reply: true });
    expect((await s.next("error")).code).toBe("QUOTA_EXCEEDED");
    s.send({ type: "message", content: "no reply needed" });
    expect((await s.next("message")).message.seq).toBe(1);
    s.close();
  });
});
