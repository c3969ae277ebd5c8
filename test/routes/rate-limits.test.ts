import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createConversation } from "../conversations";
import { addMember, call, createKey, createTenant, ensureFreeDatabases, expectProblem, expectStatus, PASSWORD } from "../harness";
import { open } from "../ws";

const planOf = async (id: string) => (await env.CONTROL_DB.prepare("SELECT * FROM plans WHERE id = ?").bind(id).first<{ requests_per_minute: number; member_requests_per_minute: number }>())!;

describe("rate limits", () => {
  it("admits exactly 50 of 200 concurrent requests on a key limited to 50 a minute", async () => {
    const t = await createTenant();
    const { key } = await createKey(t, t.owner.token, ["projects:read"], { rate_limit_per_minute: 50 });
    const results = await Promise.all(Array.from({ length: 200 }, () => call(`${t.host}/v1/projects`, { token: key })));
    const counts: Record<number, number> = {};
    for (const r of results) counts[r.status] = (counts[r.status] ?? 0) + 1;
    expect(counts).toEqual({ 200: 50, 429: 150 });
  });

  it("admits exactly the plan's requests per minute for a whole tenant, spent by its members and keys together", async () => {
    const t = await createTenant();
    const { requests_per_minute } = await planOf("free");
    // Two members' keys (each under its own member's limit) share the tenant's budget.
    const admin = await addMember(t, "admin");
    const keys = [(await createKey(t, t.owner.token, ["projects:read"])).key, (await createKey(t, admin.token, ["projects:read"])).key];
    const used = 3; // the key creations above were counted too
    const results = await Promise.all(Array.from({ length: requests_per_minute + 40 }, (_, i) => call(`${t.host}/v1/projects`, { token: keys[i % 2] })));
    expect(results.filter((r) => r.status === 200)).toHaveLength(requests_per_minute - used);
    expect(results.filter((r) => r.status === 429).every((r) => r.body.code === "RATE_LIMITED")).toBe(true);
    // Another tenant is not affected.
    const other = await createTenant();
    expectStatus(await call(`${other.host}/v1/projects`, { token: other.owner.token }), 200);
  });

  it("never lets anonymous traffic spend the tenant's budget: it counts per client address", async () => {
    const t = await createTenant();
    const { ANONYMOUS_REQUESTS_PER_MINUTE } = await import("../../src/middleware/rate-limit");
    const attacker = { "cf-connecting-ip": "203.0.113.66" };
    // More anonymous requests than the tenant's whole budget, from one address: with no credential, a bad one, and bad logins.
    const flood = await Promise.all(
      Array.from({ length: ANONYMOUS_REQUESTS_PER_MINUTE + 10 }, (_, i) =>
        i % 3 === 0
          ? call(`${t.host}/v1/projects`, { headers: attacker })
          : i % 3 === 1
            ? call(`${t.host}/v1/projects`, { headers: attacker, token: "tsk_not-a-key" })
            : call(`${t.host}/v1/auth/refresh`, { headers: attacker, body: { refresh_token: "rt_guess" } }),
      ),
    );
    expect(flood.filter((r) => r.status === 429)).toHaveLength(10);
    const refused = flood.find((r) => r.status === 429)!;
    expectProblem(refused, 429, "RATE_LIMITED");
    expect(refused.headers.get("ratelimit-policy")).toBe(`"anonymous";q=${ANONYMOUS_REQUESTS_PER_MINUTE};w=60`);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    // The owner, from anywhere, and their login, are untouched.
    const mine = await call(`${t.host}/v1/projects`, { token: t.owner.token, headers: { "cf-connecting-ip": "198.51.100.9" } });
    expectStatus(mine, 200);
    expect(mine.headers.get("ratelimit")).toMatch(/^"(member|tenant)";r=\d+;t=\d+$/);
    const login = await call(`${t.host}/v1/auth/login`, { headers: { "cf-connecting-ip": "198.51.100.9" }, body: { email: t.owner.email, password: PASSWORD } });
    expectStatus(login, 200);
  });

  it("counts an API key's traffic under its member too, so more keys do not mean more requests", async () => {
    const t = await createTenant();
    const { member_requests_per_minute } = await planOf("free");
    const keys = await Promise.all([1, 2, 3].map(() => createKey(t, t.owner.token, ["projects:read"])));
    const used = 3; // the three key creations
    const results = await Promise.all(Array.from({ length: member_requests_per_minute }, (_, i) => call(`${t.host}/v1/projects`, { token: keys[i % 3]!.key })));
    expect(results.filter((r) => r.status === 200)).toHaveLength(member_requests_per_minute - used);
    const refused = results.find((r) => r.status === 429)!;
    expect(refused.body.detail).toContain("member limit");
  });

  it("answers a refusal with 429 RATE_LIMITED, Retry-After and the RateLimit headers", async () => {
    const t = await createTenant();
    const { key } = await createKey(t, t.owner.token, ["projects:read"], { rate_limit_per_minute: 2 });
    const first = await call(`${t.host}/v1/projects`, { token: key });
    expectStatus(first, 200);
    expect(first.headers.get("ratelimit-policy")).toBe(`"api_key";q=2;w=60, "member";q=120;w=60, "tenant";q=120;w=60`);
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
    await ensureFreeDatabases(SIGNUPS_PER_MINUTE + 1);
    const results = [];
    for (let i = 0; i < SIGNUPS_PER_MINUTE + 2; i++) results.push(await signup(i, "203.0.113.7"));
    expect(results.map((r) => r.status)).toEqual([...Array(SIGNUPS_PER_MINUTE).fill(201), 429, 429]);
    expectProblem(results.at(-1)!, 429, "RATE_LIMITED");
    expect(results.at(-1)!.headers.get("ratelimit-policy")).toBe(`"signup";q=${SIGNUPS_PER_MINUTE};w=60`);
    // Another address is not affected.
    expectStatus(await signup(99, "198.51.100.2"), 201);
  });
});
