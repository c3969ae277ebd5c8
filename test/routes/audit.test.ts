import { describe, expect, it } from "vitest";
import { addMember, adminToken, call, createKey, createTenant, expectProblem, expectStatus, PASSWORD, PLATFORM, type TestTenant } from "../harness";

interface Entry {
  action: string;
  actor: { type: string; id: string | null };
  resource: { type: string; id: string | null };
  request_id: string;
  details: Record<string, unknown> | null;
}

async function auditLog(t: TestTenant, query = ""): Promise<Entry[]> {
  const res = await call(`${t.host}/v1/audit-log?limit=100${query}`, { token: t.owner.token });
  expectStatus(res, 200);
  return res.body.data;
}

describe("the audit log", () => {
  it("records every write with actor, action, resource and request id", async () => {
    const t = await createTenant();
    const created = await call(`${t.host}/v1/projects`, { token: t.owner.token, body: { name: "Audited" } });
    const key = await createKey(t, t.owner.token, ["projects:write"]);
    const patched = await call(`${t.host}/v1/projects/${created.body.id}`, { method: "PATCH", token: key.key, body: { name: "Renamed" } });
    expectStatus(patched, 200);
    expectStatus(await call(`${t.host}/v1/projects/${created.body.id}`, { method: "DELETE", token: t.owner.token }), 204);
    const editor = await addMember(t, "editor");
    expectStatus(await call(`${t.host}/v1/members/${editor.id}`, { method: "PATCH", token: t.owner.token, body: { role: "viewer" } }), 200);
    expectStatus(await call(`${t.host}/v1/members/${editor.id}`, { method: "DELETE", token: t.owner.token }), 204);
    expectStatus(await call(`${t.host}/v1/api-keys/${key.id}`, { method: "DELETE", token: t.owner.token }), 204);

    const entries = (await auditLog(t)).reverse();
    expect(entries.map((e) => e.action)).toEqual([
      "tenant.created",
      "project.created",
      "api_key.created",
      "project.updated",
      "project.deleted",
      "invitation.created",
      "invitation.accepted",
      "member.role_changed",
      "member.removed",
      "api_key.revoked",
    ]);
    const byAction = Object.fromEntries(entries.map((e) => [e.action, e]));
    expect(byAction["project.created"]).toMatchObject({ actor: { type: "user", id: t.owner.id }, resource: { type: "project", id: created.body.id }, request_id: created.headers.get("x-request-id") });
    expect(byAction["project.updated"]).toMatchObject({ actor: { type: "api_key", id: key.id }, request_id: patched.headers.get("x-request-id"), details: { fields: ["name"], on_behalf_of: t.owner.id } });
    expect(byAction["member.role_changed"]).toMatchObject({ resource: { type: "member", id: editor.id }, details: { from: "editor", to: "viewer" } });
    expect(byAction["invitation.accepted"]).toMatchObject({ actor: { type: "user", id: editor.id } });
    expect(JSON.stringify(entries)).not.toContain(key.key);
  });

  it("records nothing for a write that did not happen", async () => {
    const t = await createTenant();
    expectProblem(await call(`${t.host}/v1/projects/prj_01nothinghere0000000000000`, { method: "PATCH", token: t.owner.token, body: { name: "x" } }), 404, "NOT_FOUND");
    expectProblem(await call(`${t.host}/v1/projects/prj_01nothinghere0000000000000`, { method: "DELETE", token: t.owner.token }), 404, "NOT_FOUND");
    expectProblem(await call(`${t.host}/v1/projects`, { token: t.owner.token, body: { name: "" } }), 400, "VALIDATION_FAILED");
    expectProblem(await call(`${t.host}/v1/members/${t.owner.id}`, { method: "DELETE", token: t.owner.token }), 409, "LAST_OWNER");
    expect((await auditLog(t)).map((e) => e.action)).toEqual(["tenant.created"]);
  });

  it("records sign-ins, sign-outs, refresh-token reuse and the platform operator's changes", async () => {
    const t = await createTenant();
    const login = await call(`${t.host}/v1/auth/login`, { body: { email: t.owner.email, password: PASSWORD } });
    expectStatus(await call(`${t.host}/v1/auth/logout`, { body: { refresh_token: login.body.refresh_token } }), 204);
    expectStatus(await call(`${t.host}/v1/auth/refresh`, { body: { refresh_token: t.owner.refresh } }), 200);
    expectProblem(await call(`${t.host}/v1/auth/refresh`, { body: { refresh_token: t.owner.refresh } }), 401, "REFRESH_TOKEN_REUSED");
    expectStatus(await call(`${PLATFORM}/v1/platform/domains`, { token: adminToken(), body: { tenant: t.id, hostname: `a-${t.slug}.example.net` } }), 201);
    expectStatus(await call(`${PLATFORM}/v1/platform/tenants/${t.id}/suspend`, { method: "POST", token: adminToken() }), 200);
    expectStatus(await call(`${PLATFORM}/v1/platform/tenants/${t.id}/reactivate`, { method: "POST", token: adminToken() }), 200);

    const entries = (await auditLog(t)).reverse();
    expect(entries.map((e) => e.action)).toEqual([
      "tenant.created",
      "auth.login",
      "auth.logout",
      "auth.refresh_token_reused",
      "domain.attached",
      "tenant.suspended",
      "tenant.reactivated",
    ]);
    expect(entries.at(-1)).toMatchObject({ actor: { type: "platform", id: null }, resource: { type: "tenant", id: t.id } });
  });

  it("filters and pages, and shows nothing of another tenant", async () => {
    const a = await createTenant();
    const b = await createTenant();
    for (let i = 0; i < 3; i++) await call(`${a.host}/v1/projects`, { token: a.owner.token, body: { name: `P${i}` } });
    expect((await auditLog(a, "&action=project.created")).length).toBe(3);
    const first = await call(`${a.host}/v1/audit-log?limit=2`, { token: a.owner.token });
    const second = await call(`${a.host}/v1/audit-log?limit=2&cursor=${first.body.next_cursor}`, { token: a.owner.token });
    expect(second.body.data.map((e: Entry) => e.action)).toEqual(["project.created", "tenant.created"]);
    expect(second.body.next_cursor).toBeNull();
    expect((await auditLog(b)).map((e) => e.action)).toEqual(["tenant.created"]);
    expectProblem(await call(`${b.host}/v1/audit-log`, { token: a.owner.token }), 401, "INVALID_TOKEN");
  });
});
