import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { tenantBinding, tenantDatabase } from "../../src/db/router";
import { call, createTenant, expectStatus } from "../harness";

async function bindingOf(tenantId: string): Promise<string> {
  const row = await env.CONTROL_DB.prepare("SELECT db_binding FROM tenants WHERE id = ?").bind(tenantId).first<{ db_binding: string }>();
  return row!.db_binding;
}

describe("the tenant database router", () => {
  it("puts each tenant's rows in its own database and never in another's", async () => {
    const a = await createTenant();
    const b = await createTenant();
    for (const [t, name] of [[a, "alpha"], [b, "beta"]] as const) {
      expectStatus(await call(`${t.host}/v1/projects`, { token: t.owner.token, body: { name } }), 201);
    }
    const [dbA, dbB] = [await bindingOf(a.id), await bindingOf(b.id)];
    expect(dbA).not.toBe(dbB);
    const rowsIn = async (binding: string) =>
      (await tenantBinding(env, binding)!.prepare("SELECT tenant_id, name FROM projects").all<{ tenant_id: string; name: string }>()).results;
    expect(await rowsIn(dbA)).toEqual([{ tenant_id: a.id, name: "alpha" }]);
    expect(await rowsIn(dbB)).toEqual([{ tenant_id: b.id, name: "beta" }]);
  });

  it("filters on tenant_id even inside a tenant's database (the second wall)", async () => {
    const a = await createTenant();
    const binding = await bindingOf(a.id);
    // A stray row of another tenant in a's database (as a bug elsewhere might leave) stays invisible.
    await tenantBinding(env, binding)!
      .prepare("INSERT INTO projects (id, tenant_id, name, created_by) VALUES ('prj_01stray0000000000000000000', 'ten_other', 'stray', 'usr_x')")
      .run();
    const list = await call(`${a.host}/v1/projects`, { token: a.owner.token });
    expect(list.body.data).toEqual([]);
    expectStatus(await call(`${a.host}/v1/projects/prj_01stray0000000000000000000`, { token: a.owner.token }), 404);
  });

  it("refuses a binding name that is not a tenant database", () => {
    expect(() => tenantDatabase(env, { id: "ten_x", dbBinding: "CONTROL_DB" })).toThrow(/does not have/);
    expect(() => tenantDatabase(env, { id: "ten_x", dbBinding: "TENANT_DB_9999" })).toThrow(/does not have/);
  });
});
