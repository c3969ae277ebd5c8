import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { syncPool } from "../../src/db/pool";
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
