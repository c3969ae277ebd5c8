import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createConversation } from "../conversations";
import { addMember, adminToken, call, createKey, createTenant, expectProblem, expectStatus, PLATFORM } from "../harness";
import { createAgent, startRun } from "../runs";
import { open } from "../ws";

// Finding 1 of issue 9: an offboarded member's unexpired access token must not undo the offboarding.
describe("a demoted or removed member's token", () => {
  it("cannot mint a key above the member's current role, nor re-promote them, after a demotion", async () => {
    const t = await createTenant();
    const admin = await addMember(t, "admin");
    expectStatus(await call(`${t.host}/v1/members/${admin.id}`, { method: "PATCH", token: t.owner.token, body: { role: "editor" } }), 200);
    // The old token still says "admin"; the platform reads the membership instead.
    expectProblem(await call(`${t.host}/v1/api-keys`, { token: admin.token, body: { name: "back door", scopes: ["members:write"] } }), 403, "FORBIDDEN");
    expectProblem(await call(`${t.host}/v1/members/${admin.id}`, { method: "PATCH", token: admin.token, body: { role: "admin" } }), 403, "FORBIDDEN");
    expectProblem(await call(`${t.host}/v1/invitations`, { token: admin.token, body: { email: "friend@example.test", role: "admin" } }), 403, "FORBIDDEN");
    // What an editor may do, the token still does — as an editor.
    const key = await call(`${t.host}/v1/api-keys`, { token: admin.token, body: { name: "editor key", scopes: ["projects:read"] } });
    expectStatus(key, 201);
    const me = await call(`${t.host}/v1/me`, { token: key.body.key });
    expect(me.body.role).toBe("editor");
    expect((await call(`${t.host}/v1/me`, { token: admin.token })).body.role).toBe("editor");
  });

  it("can do nothing once the member is removed: no key, no invitation, no read, and their keys die", async () => {
    const t = await createTenant();
    const admin = await addMember(t, "admin");
    const before = await createKey(t, admin.token, ["projects:read", "invitations:write"]);
    expectStatus(await call(`${t.host}/v1/members/${admin.id}`, { method: "DELETE", token: t.owner.token }), 204);
    expectProblem(await call(`${t.host}/v1/api-keys`, { token: admin.token, body: { name: "back door", scopes: ["invitations:write"] } }), 401, "INVALID_TOKEN");
    expectProblem(await call(`${t.host}/v1/invitations`, { token: admin.token, body: { email: admin.email, role: "admin" } }), 401, "INVALID_TOKEN");
    expectProblem(await call(`${t.host}/v1/projects`, { token: admin.token }), 401, "INVALID_TOKEN");
    expectProblem(await call(`${t.host}/v1/invitations`, { token: before.key, body: { email: admin.email, role: "admin" } }), 401, "INVALID_TOKEN");
    expectProblem(await call(`${t.host}/v1/auth/refresh`, { body: { refresh_token: admin.refresh } }), 401, "INVALID_TOKEN");
    const members = await call(`${t.host}/v1/members`, { token: t.owner.token });
    expect(members.body.data.map((m: { user_id: string }) => m.user_id)).not.toContain(admin.id);
  });

  it("voids the invitations a removed or demoted admin left pending", async () => {
    const t = await createTenant();
    const admin = await addMember(t, "admin");
    const invite = async (role: string) => (await call(`${t.host}/v1/invitations`, { token: admin.token, body: { email: `accomplice-${crypto.randomUUID().slice(0, 6)}@example.test`, role } })).body.token as string;
    const pending = await invite("admin");
    const other = await invite("editor");
    expectStatus(await call(`${t.host}/v1/members/${admin.id}`, { method: "PATCH", token: t.owner.token, body: { role: "editor" } }), 200);
    const accept = (token: string) => call(`${t.host}/v1/invitations/${token}/accept`, { body: { name: "Accomplice", password: "a long password" } });
    expectProblem(await accept(pending), 410, "INVITATION_INVALID");
    // Spent for good, not given back.
    expectProblem(await accept(pending), 404, "NOT_FOUND");
    expectStatus(await call(`${t.host}/v1/members/${admin.id}`, { method: "DELETE", token: t.owner.token }), 204);
    expectProblem(await accept(other), 410, "INVITATION_INVALID");
    const members = await call(`${t.host}/v1/members`, { token: t.owner.token });
    expect(members.body.data).toHaveLength(1);
  });

  it("loses the member's open sockets at once on removal, and on demotion (4401)", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    const editor = await addMember(t, "editor");
    const viewer = await addMember(t, "viewer");
    const { key } = await createKey(t, editor.token, ["conversations:read", "conversations:write"]);
    const [byToken, byKey, bystander] = await Promise.all([open(`${conv.url}/connect`, editor.token), open(`${conv.url}/connect`, key), open(`${conv.url}/connect`, viewer.token)]);
    expectStatus(await call(`${t.host}/v1/members/${editor.id}`, { method: "DELETE", token: t.owner.token }), 204);
    expect((await byToken.closed).code).toBe(4401);
    expect((await byKey.closed).code).toBe(4401);
    // Others stay, and see the member leave.
    const presence = await bystander.next("presence", (f) => !f.participants.some((p: { user_id: string }) => p.user_id === editor.id));
    expect(presence.participants.map((p: { user_id: string }) => p.user_id)).toEqual([viewer.id]);

    const reconnect = await call(`${conv.url}/connect`, { token: editor.token, headers: { upgrade: "websocket" } });
    expectProblem(reconnect, 401, "INVALID_TOKEN");

    const demote = await open(`${conv.url}/connect`, t.owner.token);
    const admin = await addMember(t, "admin");
    const adminSocket = await open(`${conv.url}/connect`, admin.token);
    expectStatus(await call(`${t.host}/v1/members/${admin.id}`, { method: "PATCH", token: t.owner.token, body: { role: "viewer" } }), 200);
    expect((await adminSocket.closed).code).toBe(4401);
    // Back as a viewer: reading works, posting does not.
    const again = await open(`${conv.url}/connect`, admin.token);
    again.send({ type: "message", content: "still here?" });
    expect((await again.next("error")).code).toBe("FORBIDDEN");
    demote.close();
  });

  it("closes the sockets a revoked API key opened", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    const { id, key } = await createKey(t, t.owner.token, ["conversations:read"]);
    const s = await open(`${conv.url}/connect`, key);
    expectStatus(await call(`${t.host}/v1/api-keys/${id}`, { method: "DELETE", token: t.owner.token }), 204);
    expect((await s.closed).code).toBe(4401);
  });
});

// Finding 4: open sockets follow the tenant's state and limits.
describe("sockets and the tenant's state", () => {
  it("closes every socket when the tenant is suspended (4403) and starts no reply", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    const [a, b] = await Promise.all([open(`${conv.url}/connect`, t.owner.token), open(`${conv.url}/connect`, t.owner.token)]);
    expectStatus(await call(`${PLATFORM}/v1/platform/tenants/${t.id}/suspend`, { method: "POST", token: adminToken() }), 200);
    expect(await a.closed).toMatchObject({ code: 4403 });
    expect(await b.closed).toMatchObject({ code: 4403 });
    expectProblem(await call(`${conv.url}/connect`, { token: t.owner.token, headers: { upgrade: "websocket" } }), 403, "TENANT_SUSPENDED");
    expectProblem(await call(`${conv.url}/messages`, { token: t.owner.token, body: { content: "hi", reply: true } }), 403, "TENANT_SUSPENDED");
  });

  it("counts socket posts against the tenant's limit as HTTP requests are", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    const members = await Promise.all([addMember(t, "editor"), addMember(t, "editor")]);
    const s = await open(`${conv.url}/connect`, t.owner.token);
    // Two other members spend the rest of the tenant's budget over HTTP.
    let refusedOverHttp: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i < 200 && !refusedOverHttp; i++) {
      const res = await call(`${t.host}/v1/projects`, { token: members[i % 2]!.token });
      if (res.status === 429) refusedOverHttp = res;
    }
    expect(refusedOverHttp?.body.detail).toContain("tenant limit");
    s.send({ type: "message", content: "over the limit", reply: true });
    const refused = await s.next("error");
    expect(refused).toMatchObject({ code: "RATE_LIMITED" });
    expect(refused.retry_after).toBeGreaterThan(0);
    const stored = await call(`${conv.url}/messages`, { token: t.owner.token });
    expectProblem(stored, 429, "RATE_LIMITED");
  });
});

// Finding 6: caps on sockets and event streams per credential, and presence that stays cheap.
describe("connections per credential", () => {
  it("refuses a sixth socket on one conversation for one credential, and broadcasts presence only on arrivals", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    const editor = await addMember(t, "editor");
    const { key } = await createKey(t, editor.token, ["conversations:read"]);
    const watcher = await open(`${conv.url}/connect`, t.owner.token);
    const sockets = [];
    for (let i = 0; i < 5; i++) sockets.push(await open(`${conv.url}/connect`, key));
    const sixth = await call(`${conv.url}/connect`, { token: key, headers: { upgrade: "websocket" } });
    expectProblem(sixth, 429, "TOO_MANY_CONNECTIONS");
    expect(Number(sixth.headers.get("retry-after"))).toBeGreaterThan(0);
    // The owner's own sockets are another credential.
    const mine = await open(`${conv.url}/connect`, t.owner.token);
    // Five sockets of one member: one arrival, so the watcher saw one presence frame for them (and none for its own second socket).
    const presence = watcher.frames.filter((f) => f.type === "presence");
    expect(presence).toHaveLength(1);
    expect(presence[0]!.participants).toEqual(expect.arrayContaining([expect.objectContaining({ user_id: editor.id, connections: 1 })]));
    sockets[0]!.close();
    expect((await open(`${conv.url}/connect`, key)).frames[0]!.type).toBe("ready");
    mine.close();
  });

  it("refuses an eleventh open event stream for one credential", async () => {
    const t = await createTenant();
    const { key } = await createKey(t, t.owner.token, ["runs:read"]);
    const agent = await createAgent(t);
    const run = await startRun(t, agent, { text: "hello" });
    const streams: Response[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await SELF.fetch(`${t.host}/v1/runs/${run.id}/events`, { headers: { authorization: `Bearer ${key}` } });
      expect(res.status).toBe(200);
      streams.push(res);
    }
    expectProblem(await call(`${t.host}/v1/runs/${run.id}/events`, { token: key }), 429, "TOO_MANY_CONNECTIONS");
    // Another credential has its own.
    const other = await SELF.fetch(`${t.host}/v1/runs/${run.id}/events`, { headers: { authorization: `Bearer ${t.owner.token}` } });
    expect(other.status).toBe(200);
    await Promise.all([...streams, other].map((s) => s.body?.cancel()));
  });
});
