import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createConversation } from "../conversations";
import { call, createKey, createTenant, expectProblem, expectStatus } from "../harness";
import { open } from "../ws";

const planOf = async (id: string) => (await env.CONTROL_DB.prepare("SELECT * FROM plans WHERE id = ?").bind(id).first<{ requests_per_minute: number; member_requests_per_minute: number }>())!;

describe("rate limits", () => {
  it("admits exactly 50 of 200 concurrent requests on a key limited to 50 a minute", async () => {
    const t = await createTenant();
    const { key } = await createKey(t, t.owner.token, ["projects:read"], { rate_limit_per_minute: 50 });
    const results = await Promise.all(Array.from({ length: 200 }, () => call(`${t.host}/v1/projects`, { token: key })));
    const counts = results.reduce<Record<number, number>>((acc, r) => ({ ...acc, [r.status]: (acc[r.status] ?? 0) + 1 }), {});
    expect(counts).toEqual({ 200: 50, 429: 150 });
  });

  it("admits exactly the plan's requests per minute for a whole tenant", async () => {
    const t = await createTenant();
    const { requests_per_minute } = await planOf("free");
    // Unauthenticated requests to an unknown route still count against the tenant.
    const results = await Promise.all(Array.from({ length: requests_per_minute + 40 }, () => call(`${t.host}/v1/nowhere`)));
    expect(results.filter((r) => r.status === 404)).toHaveLength(requests_per_minute);
    expect(results.filter((r) => r.status === 429)).toHaveLength(40);
    // Another tenant is not affected.
    const other = await createTenant();
    expectStatus(await call(`${other.host}/v1/projects`, { token: other.owner.token }), 200);
  });

  it("answers a refusal with 429 RATE_LIMITED, Retry-After and the RateLimit headers", async () => {
    const t = await createTenant();
    const { key } = await createKey(t, t.owner.token, ["projects:read"], { rate_limit_per_minute: 2 });
    const first = await call(`${t.host}/v1/projects`, { token: key });
    expectStatus(first, 200);
    expect(first.headers.get("ratelimit-policy")).toBe(`"tenant";q=120;w=60, "api_key";q=2;w=60`);
    expect(first.headers.get("ratelimit")).toMatch(/^"api_key";r=1;t=\d+$/);
    await call(`${t.host}/v1/projects`, { token: key });
    const refused = await call(`${t.host}/v1/projects`, { token: key });
    expectProblem(refused, 429, "RATE_LIMITED");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(Number(refused.headers.get("retry-after"))).toBeLessThanOrEqual(60);
    expect(refused.headers.get("ratelimit")).toMatch(/^"api_key";r=0;t=\d+$/);
    expect(refused.body.detail).toContain("api_key limit of 2");
    // The member behind the key still has their own budget.
    expectStatus(await call(`${t.host}/v1/projects`, { token: t.owner.token }), 200);
  });

  it("never lets a key's own limit exceed its plan's per-member limit", async () => {
    const t = await createTenant();
    const { member_requests_per_minute } = await planOf("free");
    const { key } = await createKey(t, t.owner.token, ["projects:read"], { rate_limit_per_minute: 1_000_000 });
    const res = await call(`${t.host}/v1/projects`, { token: key });
    expect(res.headers.get("ratelimit-policy")).toContain(`"api_key";q=${member_requests_per_minute};w=60`);
  });

  it("limits WebSocket frames that post messages with an error frame, keeping the socket open", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    const { key } = await createKey(t, t.owner.token, ["conversations:read", "conversations:write"], { rate_limit_per_minute: 5 });
    const s = await open(`${conv.url}/connect`, key);
    for (let i = 0; i < 8; i++) s.send({ type: "message", content: `m${i}` });
    // The upgrade itself counted once, so four frames fit and four are refused.
    const errors = [];
    for (let i = 0; i < 4; i++) errors.push(await s.next("error"));
    expect(errors.map((e) => e.code)).toEqual(["RATE_LIMITED", "RATE_LIMITED", "RATE_LIMITED", "RATE_LIMITED"]);
    s.send({ type: "ping" });
    await s.next("pong");
    const stored = await call(`${conv.url}/messages`, { token: t.owner.token });
    expect(stored.body.data).toHaveLength(4);
  });
});

describe("rate limits on the platform host", () => {
  it("limits signups per client address", async () => {
    const { SIGNUPS_PER_MINUTE } = await import("../../src/middleware/rate-limit");
    const signup = (i: number, ip: string) =>
      call(`http://localhost/v1/signup`, {
        headers: { "cf-connecting-ip": ip },
        body: { tenant: { name: "S", slug: `s${i}-${crypto.randomUUID().slice(0, 8)}` }, user: { email: `s${i}-${crypto.randomUUID().slice(0, 6)}@example.test`, password: "a long password", name: "S" } },
      });
    const results = [];
    for (let i = 0; i < SIGNUPS_PER_MINUTE + 2; i++) results.push(await signup(i, "203.0.113.7"));
    expect(results.map((r) => r.status)).toEqual([...Array(SIGNUPS_PER_MINUTE).fill(201), 429, 429]);
    expectProblem(results.at(-1)!, 429, "RATE_LIMITED");
    expect(results.at(-1)!.headers.get("ratelimit-policy")).toBe(`"signup";q=${SIGNUPS_PER_MINUTE};w=60`);
    // Another address is not affected.
    expectStatus(await signup(99, "198.51.100.2"), 201);
  });
});
