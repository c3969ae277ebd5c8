import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { createConversation } from "../conversations";
import { adminToken, call, eventually, expectProblem, expectStatus, hostOf, PASSWORD, PLATFORM, uniqueSlug } from "../harness";
import { erasureOf, runErasure } from "../compliance";
import { createAgent, getRun, runEvents, startRun } from "../runs";
import { open } from "../ws";

// A router and two shards over local bindings: the Worker under test is shard s1 and the router;
// tessera-s2 (scripts/local-platform.ts, shardWorkerOptions) is the same code bundled, with its own twelve databases
// (TENANT_DB_5001…), queues and Durable Objects, reached only through the router's SHARD_S2.

const admin = { token: adminToken() };
const signup = (slug: string, jurisdiction = "default") =>
  call(`${PLATFORM}/v1/signup`, { body: { tenant: { name: `Tenant ${slug}`, slug, jurisdiction }, user: { email: `owner@${slug}.test`, password: PASSWORD, name: "Owner" } } });
const operatorView = async (tenantId: string) => {
  const listed = await call(`${PLATFORM}/v1/platform/tenants?limit=100`, admin);
  return listed.body.data.find((t: { id: string }) => t.id === tenantId);
};

beforeAll(async () => {
  // The second shard's databases join the pool through the router, migrated by shard s2 itself.
  const synced = await call(`${PLATFORM}/v1/platform/databases/sync?shard=s2`, { ...admin, method: "POST" });
  expectStatus(synced, 200);
  // And shard s1's EU databases (the harness registers only its default ones).
  expectStatus(await call(`${PLATFORM}/v1/platform/databases/sync?jurisdiction=eu`, { ...admin, method: "POST" }), 200);
});

describe("shards", () => {
  it("registers each shard's databases with their shard, and shows every shard's pool", async () => {
    const pool = await call(`${PLATFORM}/v1/platform/databases?shard=s2`, admin);
    expectStatus(pool, 200);
    expect(pool.body.shard).toBe("s2");
    expect(pool.body.bound).toBe(12);
    expect(pool.body.shards.s2.free + pool.body.shards.s2.assigned).toBe(12);
    expect(pool.body.shards.s1).toBeDefined();
    const here = await call(`${PLATFORM}/v1/platform/databases`, admin);
    expect(here.body.shard).toBe("s1");
    // Shard s1's Worker cannot open shard s2's databases at all.
    expect(env.TENANT_DB_5001).toBeUndefined();
  });

  it("serves a tenant on the second shard end to end: signup, login, a WebSocket chat and a queued run", async () => {
    // Shard s2 has the most free default databases, so the router places the signup there.
    const slug = uniqueSlug("s2");
    const made = await signup(slug);
    expectStatus(made, 201);
    expect(await operatorView(made.body.tenant.id)).toMatchObject({ shard: "s2", db_binding: expect.stringMatching(/^TENANT_DB_50\d\d$/) });
    const host = hostOf(slug);

    const login = await call(`${host}/v1/auth/login`, { body: { email: `owner@${slug}.test`, password: PASSWORD } });
    expectStatus(login, 200);
    const token = login.body.access_token as string;
    const t = { id: made.body.tenant.id, slug, host, owner: { id: made.body.user.id, email: `owner@${slug}.test`, token, refresh: login.body.refresh_token } };

    // Chat: the WebSocket upgrade passes through the router to the shard's ConversationRoom.
    const conv = await createConversation(t);
    const socket = await open(`${conv.url}/connect`, token);
    socket.send({ type: "message", content: "hello from the second shard", reply: true });
    const done = await socket.next("done", undefined, 10_000);
    expect(done.message).toMatchObject({ role: "assistant", status: "complete", usage: { provider: "local" } });
    socket.close();

    // A run: queued on shard s2's own queue (tessera-s2-runs) and consumed by shard s2.
    const agent = await createAgent(t);
    const run = await startRun(t, agent, { text: "Run on shard two" });
    const events = await runEvents(t, run.id);
    expect(events.map((e) => e.type)).toEqual(["run.created", "run.started", "run.succeeded"]);
    const finished = await getRun(t, run.id);
    expect(finished).toMatchObject({ status: "SUCCEEDED" });
    const content = await call(`${host}/v1/artifacts/${finished.artifact_id}/versions/1/content`, { token });
    expectStatus(content, 200);
    expect(content.text).toContain("Run on shard two");
  }, 40_000);

  it("keeps tenants on both shards apart: each is served by its own, and a credential of one is 401 at the other", async () => {
    // Shard s2 holds no EU databases: an EU signup goes to s1, whatever s2 has free.
    const eu = await signup(uniqueSlug("s1-eu"), "eu");
    expectStatus(eu, 201);
    expect(await operatorView(eu.body.tenant.id)).toMatchObject({ shard: "s1", jurisdiction: "eu" });
    const other = await signup(uniqueSlug("s2"));
    expectStatus(other, 201);
    expect(await operatorView(other.body.tenant.id)).toMatchObject({ shard: "s2" });

    const euHost = hostOf(eu.body.tenant.slug);
    const otherHost = hostOf(other.body.tenant.slug);
    expectStatus(await call(`${euHost}/v1/projects`, { token: eu.body.access_token, body: { name: "On s1" } }), 201);
    expectStatus(await call(`${otherHost}/v1/projects`, { token: other.body.access_token, body: { name: "On s2" } }), 201);
    const listed = await call(`${otherHost}/v1/projects`, { token: other.body.access_token });
    expect(listed.body.data.map((p: { name: string }) => p.name)).toEqual(["On s2"]);
    expectProblem(await call(`${otherHost}/v1/projects`, { token: eu.body.access_token }), 401, "INVALID_TOKEN");
    expectProblem(await call(`${euHost}/v1/projects`, { token: other.body.access_token }), 401, "INVALID_TOKEN");
  });

  it("answers 503 NO_TENANT_DATABASE naming the shard and jurisdiction when that shard has none free, with nothing written", async () => {
    // Straight to shard s2 (as a signup placed there a moment before its last EU database went would be).
    const slug = uniqueSlug("s2-eu");
    const res = await env.SHARD_S2!.fetch(`${PLATFORM}/v1/signup`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ tenant: { name: "Late", slug, jurisdiction: "eu" }, user: { email: `owner@${slug}.test`, password: PASSWORD, name: "Owner" } }),
    });
    expect(res.status).toBe(503);
    const problem = (await res.json()) as { code: string; detail: string; errors: unknown };
    expect(problem.code).toBe("NO_TENANT_DATABASE");
    expect(problem.detail).toContain("eu jurisdiction on shard s2");
    expect(problem.errors).toEqual([{ in: "body", field: "tenant.jurisdiction", message: "no free database in eu on shard s2" }]);
    expect(await env.CONTROL_DB.prepare("SELECT id FROM tenants WHERE slug = ?").bind(slug).first()).toBeNull();
    expect(await env.CONTROL_DB.prepare("SELECT id FROM users WHERE email = ?").bind(`owner@${slug}.test`).first()).toBeNull();
  });

  it("erases a person who belonged to tenants on both shards: the router runs the job, the tenant on s2 is worked on by s2", async () => {
    // Tenant A on s1 (EU: s2 has none), tenant B on s2; the person joins both and writes in B.
    const a = await signup(uniqueSlug("s1-eu"), "eu");
    const b = await signup(uniqueSlug("s2"));
    expect(await operatorView(b.body.tenant.id)).toMatchObject({ shard: "s2" });
    const [hostA, hostB] = [hostOf(a.body.tenant.slug), hostOf(b.body.tenant.slug)];
    const email = `person-${crypto.randomUUID().slice(0, 8)}@example.test`;
    const accepted: string[] = [];
    for (const [host, token] of [[hostB, b.body.access_token], [hostA, a.body.access_token]] as const) {
      const inv = await call(`${host}/v1/invitations`, { token, body: { email, role: "editor" } });
      expectStatus(inv, 201);
      const acc = await call(`${host}/v1/invitations/${inv.body.token}/accept`, { body: { name: "Person", password: PASSWORD } });
      expectStatus(acc, 200);
      accepted.push(acc.body.user.id);
    }
    const userId = accepted[0]!;
    expect(accepted[1]).toBe(userId);
    const person = await call(`${hostB}/v1/auth/login`, { body: { email, password: PASSWORD } });
    const conv = await call(`${hostB}/v1/conversations`, { token: b.body.access_token, body: { project_id: (await call(`${hostB}/v1/projects`, { token: b.body.access_token, body: { name: "Shared" } })).body.id } });
    expectStatus(await call(`${hostB}/v1/conversations/${conv.body.id}/messages`, { token: person.body.access_token, body: { content: "my words on shard two" } }), 201);

    const asked = await call(`${PLATFORM}/v1/erasures`, { ...admin, body: { subject: "user", user_id: userId } });
    expectStatus(asked, 202);
    await runErasure(asked.body.id);
    const done = await erasureOf(asked.body.id);
    const steps = new Map(done.steps.map((st: { name: string }) => [st.name, st]));
    for (const part of ["rooms", "objects", "rows", "limiters"]) expect(steps.get(`tenant:${b.body.tenant.id}:${part}`), part).toMatchObject({ done: true });
    expect(steps.get(`tenant:${b.body.tenant.id}:rooms`)).toMatchObject({ pseudonymised: 1 });
    // What s2 holds of them is gone: their message's text and authorship, their membership.
    const messages = await call(`${hostB}/v1/conversations/${conv.body.id}/messages`, { token: b.body.access_token });
    expect(JSON.stringify(messages.body)).not.toContain("my words on shard two");
    expect(JSON.stringify(messages.body)).not.toContain(userId);
    const members = await call(`${hostB}/v1/members`, { token: b.body.access_token });
    expect(members.body.data.map((m: { email: string }) => m.email)).not.toContain(email);
  }, 40_000);

  it("refuses a tenant's erasure work on a shard that does not hold the tenant's database, and for an erasure that is not this person's", async () => {
    // A member of a tenant on s1 whose erasure is asked for (here the router's queue delivers nowhere: it stays queued).
    const owner = await signup(uniqueSlug("s1-eu"), "eu");
    const host = hostOf(owner.body.tenant.slug);
    const inv = await call(`${host}/v1/invitations`, { token: owner.body.access_token, body: { email: `m-${crypto.randomUUID().slice(0, 8)}@example.test`, role: "editor" } });
    const member = await call(`${host}/v1/invitations/${inv.body.token}/accept`, { body: { name: "Member", password: PASSWORD } });
    const asked = await call(`${PLATFORM}/v1/erasures`, { ...admin, body: { subject: "user", user_id: member.body.user.id } });
    expectStatus(asked, 202);
    const person = { userId: member.body.user.id, email: "m@example.test", keyIds: [], familyIds: [], tombstones: { user: "usr_t", key: "key_t", email: "t@example.test" } };
    const tenant = { id: owner.body.tenant.id, dbBinding: (await operatorView(owner.body.tenant.id)).db_binding };
    const send = (erasureId: string, body: unknown) =>
      env.SHARD_S2!.fetch(`${PLATFORM}/v1/platform/erasures/${erasureId}/tenant-work`, { method: "POST", headers: { authorization: `Bearer ${adminToken()}`, "content-type": "application/json" }, body: JSON.stringify(body) });
    // s2 does not hold the s1 tenant's database: 409, and it never opened it.
    const elsewhere = await send(asked.body.id, { part: "inventory", person, tenant });
    expect(elsewhere.status).toBe(409);
    expect(((await elsewhere.json()) as { detail: string }).detail).toContain("not on this shard");
    // Another person's erasure, or none: 404.
    expect((await send(asked.body.id, { part: "inventory", person: { ...person, userId: "usr_someone_else" }, tenant })).status).toBe(404);
    expect((await send("era_absent", { part: "inventory", person, tenant })).status).toBe(404);
    // A step without what the inventory found of the tenant is refused by the schema, naming the field.
    const bare = await send(asked.body.id, { part: "step", person, tenant, step: `tenant:${tenant.id}:rows`, state: { done: false, deleted: 0, pseudonymised: 0 } });
    expect(bare.status).toBe(400);
    expect(JSON.stringify(await bare.json())).toContain("tenant.uploads");
  });

  it("rolls the schema out per shard: each shard's runner migrates its own databases, and an unknown shard is a 400", async () => {
    const started = await call(`${PLATFORM}/v1/platform/migrations?shard=s2`, { ...admin, body: {} });
    expectStatus(started, 202);
    expect(started.body).toMatchObject({ shard: "s2", total: 12 });
    // Shard s1 may run its own at the same time: one active rollout per shard.
    const here = await call(`${PLATFORM}/v1/platform/migrations`, { ...admin, body: {} });
    expectStatus(here, 202);
    expect(here.body.shard).toBe("s1");
    // The rollout's id is enough: the router finds its shard.
    const finished = await eventually(async () => {
      const got = await call(`${PLATFORM}/v1/platform/migrations/${started.body.id}?databases=true`, admin);
      expect(got.body.status).toBe("completed");
      return got.body;
    }, 15_000);
    expect(finished.databases.map((d: { database: string }) => d.database).every((b: string) => /^TENANT_DB_50\d\d$/.test(b))).toBe(true);
    const unknown = await call(`${PLATFORM}/v1/platform/migrations?shard=s9`, admin);
    expectProblem(unknown, 400, "VALIDATION_FAILED");
    expect(unknown.body.errors[0]).toMatchObject({ in: "query", field: "shard" });
  });
});
