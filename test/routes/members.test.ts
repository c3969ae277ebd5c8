import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { addMember, call, createKey, createTenant, expectProblem, expectStatus, PASSWORD } from "../harness";

describe("invitations", () => {
  it("invites with a single-use token that joins the tenant with the role given", async () => {
    const t = await createTenant();
    const inv = await call(`${t.host}/v1/invitations`, { token: t.owner.token, body: { email: "New.Person@Example.test", role: "editor" } });
    expectStatus(inv, 201);
    expect(inv.body).toMatchObject({ email: "new.person@example.test", role: "editor", token: expect.stringMatching(/^inv_/) });

    const accepted = await call(`${t.host}/v1/invitations/${inv.body.token}/accept`, { body: { name: "New Person", password: PASSWORD } });
    expectStatus(accepted, 200);
    const me = await call(`${t.host}/v1/me`, { token: accepted.body.access_token });
    expect(me.body).toMatchObject({ role: "editor", user: { email: "new.person@example.test", name: "New Person" } });

    expectProblem(await call(`${t.host}/v1/invitations/${inv.body.token}/accept`, { body: { name: "Again", password: PASSWORD } }), 410, "INVITATION_INVALID");
    const stored = await env.CONTROL_DB.prepare("SELECT token_hash FROM invitations WHERE id = ?").bind(inv.body.id).first<{ token_hash: string }>();
    expect(stored!.token_hash).not.toContain(inv.body.token);
  });

  it("makes an existing user prove their password, and keeps them one account", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const invite = () => call(`${b.host}/v1/invitations`, { token: b.owner.token, body: { email: a.owner.email, role: "viewer" } });
    const inv = await invite();
    expectProblem(await call(`${b.host}/v1/invitations/${inv.body.token}/accept`, { body: { name: "A", password: "wrong password" } }), 401, "INVALID_CREDENTIALS");
    // A wrong guess spent that invitation; a new one is needed.
    expectProblem(await call(`${b.host}/v1/invitations/${inv.body.token}/accept`, { body: { name: "A", password: PASSWORD } }), 404, "NOT_FOUND");
    const again = await invite();
    const ok = await call(`${b.host}/v1/invitations/${again.body.token}/accept`, { body: { name: "A", password: PASSWORD } });
    expectStatus(ok, 200);
    expect(ok.body.user.id).toBe(a.owner.id);
  });

  it("refuses an invitation token on another tenant's host, and inviting a member twice", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const inv = await call(`${a.host}/v1/invitations`, { token: a.owner.token, body: { email: "x@example.test", role: "viewer" } });
    expectProblem(await call(`${b.host}/v1/invitations/${inv.body.token}/accept`, { body: { name: "X", password: PASSWORD } }), 404, "NOT_FOUND");
    expectProblem(await call(`${a.host}/v1/invitations`, { token: a.owner.token, body: { email: a.owner.email, role: "viewer" } }), 409, "CONFLICT");
  });

  it("lets only an owner invite an owner", async () => {
    const t = await createTenant();
    const admin = await addMember(t, "admin");
    expectProblem(await call(`${t.host}/v1/invitations`, { token: admin.token, body: { email: "o@example.test", role: "owner" } }), 403, "FORBIDDEN");
    expectStatus(await call(`${t.host}/v1/invitations`, { token: admin.token, body: { email: "e@example.test", role: "editor" } }), 201);
    expectStatus(await call(`${t.host}/v1/invitations`, { token: t.owner.token, body: { email: "o@example.test", role: "owner" } }), 201);
  });
});

describe("/v1/members", () => {
  it("lists members with their roles", async () => {
    const t = await createTenant();
    const editor = await addMember(t, "editor");
    const res = await call(`${t.host}/v1/members`, { token: editor.token });
    expectStatus(res, 200);
    const roles = Object.fromEntries(res.body.data.map((m: { user_id: string; role: string }) => [m.user_id, m.role]));
    expect(roles).toEqual({ [t.owner.id]: "owner", [editor.id]: "editor" });
    expect(JSON.stringify(res.body)).not.toContain("password");
  });

  it("changes roles; the new role shows on the next refresh", async () => {
    const t = await createTenant();
    const m = await addMember(t, "viewer");
    const res = await call(`${t.host}/v1/members/${m.id}`, { method: "PATCH", token: t.owner.token, body: { role: "editor" } });
    expectStatus(res, 200);
    expect(res.body.role).toBe("editor");
    const refreshed = await call(`${t.host}/v1/auth/refresh`, { body: { refresh_token: m.refresh } });
    const me = await call(`${t.host}/v1/me`, { token: refreshed.body.access_token });
    expect(me.body.role).toBe("editor");
  });

  it("lets only an owner grant owner or change an owner", async () => {
    const t = await createTenant();
    const admin = await addMember(t, "admin");
    const editor = await addMember(t, "editor");
    expectProblem(await call(`${t.host}/v1/members/${editor.id}`, { method: "PATCH", token: admin.token, body: { role: "owner" } }), 403, "FORBIDDEN");
    expectProblem(await call(`${t.host}/v1/members/${t.owner.id}`, { method: "PATCH", token: admin.token, body: { role: "viewer" } }), 403, "FORBIDDEN");
    expectProblem(await call(`${t.host}/v1/members/${t.owner.id}`, { method: "DELETE", token: admin.token }), 403, "FORBIDDEN");
    expectStatus(await call(`${t.host}/v1/members/${editor.id}`, { method: "PATCH", token: admin.token, body: { role: "viewer" } }), 200);
    expectStatus(await call(`${t.host}/v1/members/${editor.id}`, { method: "PATCH", token: t.owner.token, body: { role: "owner" } }), 200);
  });

  it("never leaves a tenant without an owner", async () => {
    const t = await createTenant();
    expectProblem(await call(`${t.host}/v1/members/${t.owner.id}`, { method: "PATCH", token: t.owner.token, body: { role: "admin" } }), 409, "LAST_OWNER");
    expectProblem(await call(`${t.host}/v1/members/${t.owner.id}`, { method: "DELETE", token: t.owner.token }), 409, "LAST_OWNER");
    // Nothing else changed with the refused removal: the owner's session and keys still work.
    const key = await createKey(t, t.owner.token, ["projects:read"]);
    expectProblem(await call(`${t.host}/v1/members/${t.owner.id}`, { method: "DELETE", token: t.owner.token }), 409, "LAST_OWNER");
    expectStatus(await call(`${t.host}/v1/projects`, { token: key.key }), 200);
    expectStatus(await call(`${t.host}/v1/auth/refresh`, { body: { refresh_token: t.owner.refresh } }), 200);

    const second = await addMember(t, "owner");
    // Two owners demoting each other at once: one must stay owner.
    const results = await Promise.all([
      call(`${t.host}/v1/members/${t.owner.id}`, { method: "PATCH", token: second.token, body: { role: "admin" } }),
      call(`${t.host}/v1/members/${second.id}`, { method: "PATCH", token: t.owner.token, body: { role: "admin" } }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
    const owners = await env.CONTROL_DB.prepare("SELECT count(*) AS n FROM memberships WHERE tenant_id = ? AND role = 'owner'").bind(t.id).first<{ n: number }>();
    expect(owners!.n).toBe(1);
  });

  it("ends a removed member's sessions and API keys", async () => {
    const t = await createTenant();
    const editor = await addMember(t, "editor");
    const key = await createKey(t, editor.token, ["projects:read"]);
    expectStatus(await call(`${t.host}/v1/projects`, { token: key.key }), 200);
    expectStatus(await call(`${t.host}/v1/members/${editor.id}`, { method: "DELETE", token: t.owner.token }), 204);
    expectProblem(await call(`${t.host}/v1/projects`, { token: key.key }), 401, "INVALID_TOKEN");
    expectProblem(await call(`${t.host}/v1/auth/refresh`, { body: { refresh_token: editor.refresh } }), 401, "INVALID_TOKEN");
    expectProblem(await call(`${t.host}/v1/auth/login`, { body: { email: editor.email, password: PASSWORD } }), 401, "INVALID_CREDENTIALS");
    expectProblem(await call(`${t.host}/v1/members/${editor.id}`, { method: "DELETE", token: t.owner.token }), 404, "NOT_FOUND");
  });

  it("lowers a demoted member's keys to their new role", async () => {
    const t = await createTenant();
    const admin = await addMember(t, "admin");
    const key = await createKey(t, admin.token, ["projects:write", "members:read"]);
    expectStatus(await call(`${t.host}/v1/projects`, { token: key.key, body: { name: "ok" } }), 201);
    expectStatus(await call(`${t.host}/v1/members/${admin.id}`, { method: "PATCH", token: t.owner.token, body: { role: "viewer" } }), 200);
    expectProblem(await call(`${t.host}/v1/projects`, { token: key.key, body: { name: "no" } }), 403, "FORBIDDEN");
    expectStatus(await call(`${t.host}/v1/members`, { token: key.key }), 200);
  });

  it("hides another tenant's members", async () => {
    const a = await createTenant();
    const b = await createTenant();
    expectProblem(await call(`${b.host}/v1/members/${a.owner.id}`, { method: "PATCH", token: b.owner.token, body: { role: "viewer" } }), 404, "NOT_FOUND");
    expectProblem(await call(`${b.host}/v1/members/${a.owner.id}`, { method: "DELETE", token: b.owner.token }), 404, "NOT_FOUND");
    expectProblem(await call(`${b.host}/v1/members`, { token: a.owner.token }), 401, "INVALID_TOKEN");
    const list = await call(`${b.host}/v1/members`, { token: b.owner.token });
    expect(list.body.data.map((m: { user_id: string }) => m.user_id)).toEqual([b.owner.id]);
  });
});

describe("pending invitations", () => {
  it("lists pending invitations without their tokens, and revokes one so its token stops working", async () => {
    const t = await createTenant();
    const kept = await call(`${t.host}/v1/invitations`, { token: t.owner.token, body: { email: "kept@example.test", role: "viewer" } });
    const revoked = await call(`${t.host}/v1/invitations`, { token: t.owner.token, body: { email: "gone@example.test", role: "editor" } });
    const list = await call(`${t.host}/v1/invitations`, { token: t.owner.token });
    expectStatus(list, 200);
    expect(list.body.data.map((i: { email: string }) => i.email).sort()).toEqual(["gone@example.test", "kept@example.test"]);
    expect(list.text).not.toContain(kept.body.token);

    expectStatus(await call(`${t.host}/v1/invitations/${revoked.body.id}`, { method: "DELETE", token: t.owner.token }), 204);
    expectProblem(await call(`${t.host}/v1/invitations/${revoked.body.token}/accept`, { body: { name: "G", password: PASSWORD } }), 404, "NOT_FOUND");
    expectProblem(await call(`${t.host}/v1/invitations/${revoked.body.id}`, { method: "DELETE", token: t.owner.token }), 404, "NOT_FOUND");

    expectStatus(await call(`${t.host}/v1/invitations/${kept.body.token}/accept`, { body: { name: "K", password: PASSWORD } }), 200);
    expect((await call(`${t.host}/v1/invitations`, { token: t.owner.token })).body.data).toEqual([]);
  });

  it("hides another tenant's invitations", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const inv = await call(`${a.host}/v1/invitations`, { token: a.owner.token, body: { email: "x@example.test", role: "viewer" } });
    expectProblem(await call(`${b.host}/v1/invitations/${inv.body.id}`, { method: "DELETE", token: b.owner.token }), 404, "NOT_FOUND");
    expect((await call(`${b.host}/v1/invitations`, { token: b.owner.token })).body.data).toEqual([]);
  });
});
