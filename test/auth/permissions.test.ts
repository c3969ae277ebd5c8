import { describe, expect, it } from "vitest";
import { PERMISSIONS, ROLE_PERMISSIONS, ROLES, type Permission } from "../../src/auth/permissions";
import { addMember, call, createTenant, type TestTenant } from "../harness";

/** One request per permission, made fresh for each role so writes do not collide. */
const PROBES: Record<Permission, (t: TestTenant, token: string) => Promise<{ status: number; text: string }>> = {
  "projects:read": (t, token) => call(`${t.host}/v1/projects`, { token }),
  "projects:write": (t, token) => call(`${t.host}/v1/projects`, { token, body: { name: "probe" } }),
  "members:read": (t, token) => call(`${t.host}/v1/members`, { token }),
  // PATCH of an absent member: past the permission check it is 404, before it 403.
  "members:write": (t, token) => call(`${t.host}/v1/members/usr_absent`, { method: "PATCH", token, body: { role: "viewer" } }),
  "invitations:write": (t, token) => call(`${t.host}/v1/invitations`, { token, body: { email: `p-${crypto.randomUUID()}@example.test`, role: "viewer" } }),
  "api_keys:read": (t, token) => call(`${t.host}/v1/api-keys`, { token }),
  "api_keys:write": (t, token) => call(`${t.host}/v1/api-keys/key_absent`, { method: "DELETE", token }),
  "audit:read": (t, token) => call(`${t.host}/v1/audit-log`, { token }),
  "conversations:read": (t, token) => call(`${t.host}/v1/conversations`, { token }),
  // An absent project: past the permission check it is 404, before it 403.
  "conversations:write": (t, token) => call(`${t.host}/v1/conversations`, { token, body: { project_id: "prj_absent" } }),
  "usage:read": (t, token) => call(`${t.host}/v1/usage`, { token }),
  "agents:read": (t, token) => call(`${t.host}/v1/agents`, { token }),
  "agents:write": (t, token) => call(`${t.host}/v1/agents`, { token, body: { project_id: "prj_absent", name: "probe" } }),
  "prompts:read": (t, token) => call(`${t.host}/v1/prompts`, { token }),
  "prompts:write": (t, token) => call(`${t.host}/v1/prompts/probe/versions`, { token, body: { template: "Hello {{name}}" } }),
  "runs:read": (t, token) => call(`${t.host}/v1/runs`, { token }),
  "runs:write": (t, token) => call(`${t.host}/v1/runs`, { token, body: { agent_id: "agt_absent", project_id: "prj_absent", input: { text: "hi" } } }),
  "artifacts:read": (t, token) => call(`${t.host}/v1/artifacts`, { token }),
  "artifacts:write": (t, token) =>
    call(`${t.host}/v1/artifacts?project_id=prj_absent&kind=document&name=probe`, { token, rawBody: "x", headers: { "content-type": "text/plain" } }),
  "knowledge:read": (t, token) => call(`${t.host}/v1/knowledge-bases`, { token }),
  "knowledge:write": (t, token) => call(`${t.host}/v1/knowledge-bases`, { token, body: { project_id: "prj_absent", name: "probe" } }),
  "webhooks:read": (t, token) => call(`${t.host}/v1/webhooks/endpoints`, { token }),
  "webhooks:write": (t, token) => call(`${t.host}/v1/webhooks/endpoints`, { token, body: { url: "not a url" } }),
  "campaigns:read": (t, token) => call(`${t.host}/v1/campaigns`, { token }),
  "campaigns:write": (t, token) => call(`${t.host}/v1/campaigns`, { token, body: { project_id: "prj_absent", name: "probe" } }),
  "posts:read": (t, token) => call(`${t.host}/v1/posts`, { token }),
  "posts:write": (t, token) => call(`${t.host}/v1/posts`, { token, body: { project_id: "prj_absent", title: "probe", variants: [{ channel: "linkedin", text: "hi" }] } }),
  "posts:review": (t, token) => call(`${t.host}/v1/posts/pst_absent/approve`, { token, body: { revision: 1 } }),
  "compliance:manage": (t, token) => call(`${t.host}/v1/settings/compliance`, { token }),
};

describe("the permission matrix, enforced on every route", () => {
  it("has a probe for every permission", () => {
    expect(Object.keys(PROBES).sort()).toEqual([...PERMISSIONS].sort());
  });

  for (const role of ROLES) {
    it(`${role}: allowed exactly what the matrix grants`, async () => {
      const t = await createTenant();
      const token = role === "owner" ? t.owner.token : (await addMember(t, role)).token;
      const outcome: Record<string, string> = {};
      const expected: Record<string, string> = {};
      for (const permission of PERMISSIONS) {
        const res = await PROBES[permission](t, token);
        outcome[permission] = res.status === 403 ? "denied" : res.status < 500 ? "allowed" : `error ${res.status}: ${res.text}`;
        expected[permission] = ROLE_PERMISSIONS[role].has(permission) ? "allowed" : "denied";
      }
      expect(outcome).toEqual(expected);
    });
  }
});

describe("the matrix keeps the product's promises", () => {
  it("viewers only read; editors write content, conversations and keys but not members; admins and owners do all", () => {
    expect([...ROLE_PERMISSIONS.viewer].sort()).toEqual([
      "agents:read",
      "artifacts:read",
      "campaigns:read",
      "conversations:read",
      "knowledge:read",
      "members:read",
      "posts:read",
      "projects:read",
      "prompts:read",
      "runs:read",
    ]);
    for (const write of ["agents:write", "prompts:write", "runs:write", "artifacts:write", "knowledge:write", "campaigns:write", "posts:write", "posts:review"] as const) expect(ROLE_PERMISSIONS.editor.has(write)).toBe(true);
    expect(ROLE_PERMISSIONS.editor.has("conversations:write")).toBe(true);
    expect(ROLE_PERMISSIONS.viewer.has("api_keys:write")).toBe(false);
    expect(ROLE_PERMISSIONS.editor.has("projects:write")).toBe(true);
    expect(ROLE_PERMISSIONS.editor.has("members:write")).toBe(false);
    expect(ROLE_PERMISSIONS.editor.has("invitations:write")).toBe(false);
    expect([...ROLE_PERMISSIONS.admin].sort()).toEqual([...PERMISSIONS].sort());
    expect([...ROLE_PERMISSIONS.owner].sort()).toEqual([...PERMISSIONS].sort());
  });
});
