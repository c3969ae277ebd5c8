import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { syncPool } from "../../src/db/pool";
import { tenantBinding } from "../../src/db/router";
import { runErasure } from "../compliance";
import { adminToken, call, ensureFreeDatabases, expectProblem, expectStatus, PASSWORD, PLATFORM, uniqueSlug } from "../harness";

const signup = (slug: string, jurisdiction?: string) =>
  call(`${PLATFORM}/v1/signup`, { body: { tenant: { name: `Tenant ${slug}`, slug, ...(jurisdiction && { jurisdiction }) }, user: { email: `owner@${slug}.test`, password: PASSWORD, name: "Owner" } } });
const bindingOf = async (tenantId: string) => (await env.CONTROL_DB.prepare("SELECT db_binding FROM tenants WHERE id = ?").bind(tenantId).first<{ db_binding: string }>())!.db_binding;

describe("data residency", () => {
  it("gives a tenant that chooses the EU a database from the EU pool, and shows where each tenant's data lives", async () => {
    await ensureFreeDatabases(2);
    await syncPool(env, { jurisdiction: "eu", limit: 2 });
    const eu = await signup(uniqueSlug("eu"), "eu");
    expectStatus(eu, 201);
    expect(eu.body.tenant.jurisdiction).toBe("eu");
    expect(await bindingOf(eu.body.tenant.id)).toMatch(/^TENANT_DB_EU_\d{4}$/);
    const plain = await signup(uniqueSlug("default"));
    expectStatus(plain, 201);
    expect(plain.body.tenant.jurisdiction).toBe("default");
    expect(await bindingOf(plain.body.tenant.id)).toMatch(/^TENANT_DB_\d{4}$/);
    // The operator sees each tenant's jurisdiction and each jurisdiction's pool.
    const listed = await call(`${PLATFORM}/v1/platform/tenants?limit=100`, { token: adminToken() });
    const byId = new Map(listed.body.data.map((t: { id: string }) => [t.id, t]));
    expect(byId.get(eu.body.tenant.id)).toMatchObject({ jurisdiction: "eu", db_binding: expect.stringMatching(/^TENANT_DB_EU_/) });
    expect(byId.get(plain.body.tenant.id)).toMatchObject({ jurisdiction: "default" });
    const pool = await call(`${PLATFORM}/v1/platform/databases`, { token: adminToken() });
    expect(pool.body.jurisdictions.eu.assigned).toBeGreaterThanOrEqual(1);
    // The tenant sees it too.
    const me = await call(`http://${eu.body.tenant.slug}.localhost/v1/me`, { token: eu.body.access_token });
    expectStatus(me, 200);
  });

  it("keeps an EU tenant's R2 objects in the EU bucket and its conversation rooms in EU objects, and its erasure finds them there", async () => {
    await syncPool(env, { jurisdiction: "eu", limit: 2 });
    const slug = uniqueSlug("eu-data");
    const made = await signup(slug, "eu");
    expectStatus(made, 201);
    const t = { id: made.body.tenant.id as string, host: `http://${slug}.localhost`, token: made.body.access_token as string };
    const project = await call(`${t.host}/v1/projects`, { token: t.token, body: { name: "EU work" } });

    // An upload: written to ARTIFACTS_EU only, and read back from there.
    const up = await call(`${t.host}/v1/artifacts?project_id=${project.body.id}&kind=document&name=Notes`, { token: t.token, rawBody: "kept in the EU", headers: { "content-type": "text/plain" } });
    expectStatus(up, 201);
    const d1 = tenantBinding(env, await bindingOf(t.id))!;
    const key = (await d1.prepare("SELECT r2_key FROM artifact_versions WHERE artifact_id = ?").bind(up.body.id).first<{ r2_key: string }>())!.r2_key;
    expect(await env.ARTIFACTS_EU.head(key)).not.toBeNull();
    expect(await env.ARTIFACTS.head(key)).toBeNull();
    expect((await call(`${t.host}/v1/artifacts/${up.body.id}/versions/1/content`, { token: t.token })).text).toBe("kept in the EU");

    // A conversation: its log is in the room made for the EU, not the one a default tenant's id names.
    const conv = await call(`${t.host}/v1/conversations`, { token: t.token, body: { project_id: project.body.id } });
    expectStatus(await call(`${t.host}/v1/conversations/${conv.body.id}/messages`, { token: t.token, body: { content: "bonjour" } }), 201);
    const room = (name: string) => env.CONVERSATION_ROOM.get(env.CONVERSATION_ROOM.idFromName(name));
    expect((await room(`eu:${t.id}:${conv.body.id}`).history(0, 10)).map((m) => m.content)).toEqual(["bonjour"]);
    expect(await room(`${t.id}:${conv.body.id}`).history(0, 10)).toEqual([]);

    // The operator sees where each part lives, and that rooms are placed by simulation here.
    const listed = await call(`${PLATFORM}/v1/platform/tenants?limit=100`, { token: adminToken() });
    expect(listed.body.data.find((x: { id: string }) => x.id === t.id).residency).toMatchObject({
      database: { jurisdiction: "eu" },
      objects: { bucket: "ARTIFACTS_EU", jurisdiction: "eu" },
      conversations: { jurisdiction: "eu", placement: "simulated" },
    });

    // Erasing the tenant reaches its objects and rooms where they are.
    expectStatus(await call(`${PLATFORM}/v1/platform/tenants/${t.id}/suspend`, { token: adminToken(), body: {} }), 200);
    const asked = await call(`${PLATFORM}/v1/platform/tenants/${t.id}/erase`, { token: adminToken(), body: {} });
    expectStatus(asked, 202);
    await runErasure(asked.body.id);
    expect(await env.ARTIFACTS_EU.head(key)).toBeNull();
    expect(await room(`eu:${t.id}:${conv.body.id}`).history(0, 10)).toEqual([]);
  });

  it("answers 503 NO_TENANT_DATABASE naming the jurisdiction when its pool is empty, with nothing written, while the other still serves", async () => {
    await syncPool(env, { jurisdiction: "eu" });
    // Fill the EU pool (it holds a few databases in the tests).
    for (let i = 0; i < 8; i++) {
      const res = await signup(uniqueSlug("eu-fill"), "eu");
      if (res.status === 503) break;
      expectStatus(res, 201);
    }
    const slug = uniqueSlug("eu-late");
    const refused = await signup(slug, "eu");
    expectProblem(refused, 503, "NO_TENANT_DATABASE");
    expect(refused.body.detail).toContain("eu");
    expect(refused.body.errors).toEqual([{ in: "body", field: "tenant.jurisdiction", message: "no free database in eu on shard s1" }]);
    expect(await env.CONTROL_DB.prepare("SELECT id FROM tenants WHERE slug = ?").bind(slug).first()).toBeNull();
    expect(await env.CONTROL_DB.prepare("SELECT id FROM users WHERE email = ?").bind(`owner@${slug}.test`).first()).toBeNull();
    // The default pool is its own: a default signup still succeeds.
    await ensureFreeDatabases(1);
    expectStatus(await signup(uniqueSlug("still")), 201);
  });

  it("refuses a jurisdiction it does not know, naming the field", async () => {
    const res = await signup(uniqueSlug("mars"), "mars");
    expectProblem(res, 400, "VALIDATION_FAILED");
    expect(res.body.errors[0].field).toBe("tenant.jurisdiction");
  });
});
