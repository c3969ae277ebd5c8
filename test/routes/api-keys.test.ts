import { env } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { addMember, call, createKey, createTenant, eventually, expectProblem, expectStatus } from "../harness";

describe("/v1/api-keys", () => {
  it("shows the secret once, stores only its hash, and lists keys without secrets", async () => {
    const t = await createTenant();
    const created = await createKey(t, t.owner.token, ["projects:read"]);
    expect(created.key).toMatch(/^tsk_/);
    expect(created.body).toMatchObject({ name: "test key", scopes: ["projects:read"], created_by: t.owner.id, expires_at: null, last_used_at: null });
    expect(created.key.startsWith(created.body.prefix)).toBe(true);

    const row = await env.CONTROL_DB.prepare("SELECT * FROM api_keys WHERE id = ?").bind(created.id).first<Record<string, string>>();
    expect(JSON.stringify(row)).not.toContain(created.key);

    const list = await call(`${t.host}/v1/api-keys`, { token: t.owner.token });
    expectStatus(list, 200);
    expect(list.body.data).toHaveLength(1);
    expect(list.body.data[0].id).toBe(created.id);
    expect(list.text).not.toContain(created.key);
    expect(list.body.data[0].key).toBeUndefined();
  });

  it("authenticates with the key and records when it was last used", async () => {
    const t = await createTenant();
    const { key, id } = await createKey(t, t.owner.token, ["projects:read"]);
    const me = await call(`${t.host}/v1/me`, { token: key });
    expectStatus(me, 200);
    expect(me.body).toMatchObject({ credential: { kind: "api_key", api_key_id: id }, permissions: ["projects:read"], user: { id: t.owner.id } });
    // last_used_at is written after the response (waitUntil).
    await eventually(async () => expect((await call(`${t.host}/v1/api-keys`, { token: t.owner.token })).body.data[0].last_used_at).not.toBeNull());
  });

  it("checks scopes per route", async () => {
    const t = await createTenant();
    const { key } = await createKey(t, t.owner.token, ["projects:read"]);
    expectStatus(await call(`${t.host}/v1/projects`, { token: key }), 200);
    expectProblem(await call(`${t.host}/v1/projects`, { token: key, body: { name: "x" } }), 403, "INSUFFICIENT_SCOPE");
    expectProblem(await call(`${t.host}/v1/members`, { token: key }), 403, "INSUFFICIENT_SCOPE");
  });

  it("never lets a key exceed its creator's role; viewers make no keys", async () => {
    const t = await createTenant();
    const editor = await addMember(t, "editor");
    const beyond = await call(`${t.host}/v1/api-keys`, { token: editor.token, body: { name: "k", scopes: ["projects:read", "members:write"] } });
    expectProblem(beyond, 403, "FORBIDDEN");
    expect(beyond.body.detail).toContain("members:write");
    expectStatus(await call(`${t.host}/v1/api-keys`, { token: editor.token, body: { name: "k", scopes: ["projects:write"] } }), 201);

    const viewer = await addMember(t, "viewer");
    expectProblem(await call(`${t.host}/v1/api-keys`, { token: viewer.token, body: { name: "k", scopes: ["projects:read"] } }), 403, "FORBIDDEN");

    // A key that may create keys can only mint keys within its own scopes.
    const { key } = await createKey(t, t.owner.token, ["api_keys:write", "projects:read"]);
    expectProblem(await call(`${t.host}/v1/api-keys`, { token: key, body: { name: "k", scopes: ["projects:write"] } }), 403, "FORBIDDEN");
    expectStatus(await call(`${t.host}/v1/api-keys`, { token: key, body: { name: "k", scopes: ["projects:read"] } }), 201);
  });

  it("refuses unknown scopes, an empty scope list and a past expiry, naming the field", async () => {
    const t = await createTenant();
    const unknown = await call(`${t.host}/v1/api-keys`, { token: t.owner.token, body: { name: "k", scopes: ["root"] } });
    expectProblem(unknown, 400, "VALIDATION_FAILED");
    expect(unknown.body.errors[0].field).toBe("scopes.0");
    const empty = await call(`${t.host}/v1/api-keys`, { token: t.owner.token, body: { name: "k", scopes: [] } });
    expectProblem(empty, 400, "VALIDATION_FAILED");
    expect(empty.body.errors[0].field).toBe("scopes");
    const past = await call(`${t.host}/v1/api-keys`, { token: t.owner.token, body: { name: "k", scopes: ["projects:read"], expires_at: "2020-01-01T00:00:00Z" } });
    expectProblem(past, 400, "VALIDATION_FAILED");
    expect(past.body.errors[0].field).toBe("expires_at");
  });

  it("stops working at its expiry", async () => {
    const t = await createTenant();
    const expiresAt = Date.now() + 60_000;
    const { key } = await createKey(t, t.owner.token, ["projects:read"], { expires_at: new Date(expiresAt).toISOString() });
    expectStatus(await call(`${t.host}/v1/projects`, { token: key }), 200);
    // The key is now in this isolate's cache; its expiry must still hold. The clock moves past it rather than being waited for.
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(expiresAt + 1000);
      expectProblem(await call(`${t.host}/v1/projects`, { token: key }), 401, "INVALID_TOKEN");
    } finally {
      vi.useRealTimers();
    }
  });

  it("revokes a key; editors revoke only their own", async () => {
    const t = await createTenant();
    const editor = await addMember(t, "editor");
    const ownerKey = await createKey(t, t.owner.token, ["projects:read"]);
    const editorKey = await createKey(t, editor.token, ["projects:read"]);
    expectProblem(await call(`${t.host}/v1/api-keys/${ownerKey.id}`, { method: "DELETE", token: editor.token }), 403, "FORBIDDEN");
    expectStatus(await call(`${t.host}/v1/api-keys/${editorKey.id}`, { method: "DELETE", token: editor.token }), 204);
    expectProblem(await call(`${t.host}/v1/projects`, { token: editorKey.key }), 401, "INVALID_TOKEN");
    expectStatus(await call(`${t.host}/v1/api-keys/${ownerKey.id}`, { method: "DELETE", token: t.owner.token }), 204);
    expectProblem(await call(`${t.host}/v1/api-keys/${ownerKey.id}`, { method: "DELETE", token: t.owner.token }), 404, "NOT_FOUND");
  });

  it("keeps keys to their tenant: another tenant's key is 401, its key id 404", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const keyA = await createKey(a, a.owner.token, ["projects:read"]);
    expectProblem(await call(`${b.host}/v1/me`, { token: keyA.key }), 401, "INVALID_TOKEN");
    expectProblem(await call(`${b.host}/v1/api-keys/${keyA.id}`, { method: "DELETE", token: b.owner.token }), 404, "NOT_FOUND");
    const listB = await call(`${b.host}/v1/api-keys`, { token: b.owner.token });
    expect(listB.body.data).toEqual([]);
    expectStatus(await call(`${a.host}/v1/me`, { token: keyA.key }), 200);
  });
});
