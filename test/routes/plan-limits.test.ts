import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { addMember, adminToken, call, createTenant, expectProblem, expectStatus, PASSWORD, PLATFORM, type TestTenant } from "../harness";

const changePlan = (t: TestTenant, plan: string) => call(`${PLATFORM}/v1/platform/tenants/${t.id}/plan`, { token: adminToken(), body: { plan } });
const planRow = async (id: string) => (await env.CONTROL_DB.prepare("SELECT * FROM plans WHERE id = ?").bind(id).first<{ seats: number; projects: number; name: string }>())!;

describe("plan limits", () => {
  it("stops project creation at the plan's limit, naming it, even for concurrent creates", async () => {
    const t = await createTenant();
    const free = await planRow("free");
    for (let i = 0; i < free.projects - 2; i++) expectStatus(await call(`${t.host}/v1/projects`, { token: t.owner.token, body: { name: `P${i}` } }), 201);
    // Five racing creates for the last two slots: exactly two land.
    const racing = await Promise.all([0, 1, 2, 3, 4].map((i) => call(`${t.host}/v1/projects`, { token: t.owner.token, body: { name: `R${i}` } })));
    expect(racing.map((r) => r.status).sort()).toEqual([201, 201, 403, 403, 403]);
    const refused = racing.find((r) => r.status === 403)!;
    expectProblem(refused, 403, "PLAN_LIMIT");
    expect(refused.body.detail).toContain(`${free.projects} projects`);
    const list = await call(`${t.host}/v1/projects?limit=100`, { token: t.owner.token });
    expect(list.body.data).toHaveLength(free.projects);
    // Refused creates left no audit entries.
    const audit = await call(`${t.host}/v1/audit-log?action=project.created&limit=100`, { token: t.owner.token });
    expect(audit.body.data).toHaveLength(free.projects);

    expectStatus(await changePlan(t, "pro"), 200);
    expectStatus(await call(`${t.host}/v1/projects`, { token: t.owner.token, body: { name: "after upgrade" } }), 201);
  });

  it("counts members and pending invitations against seats", async () => {
    const t = await createTenant();
    const free = await planRow("free");
    await addMember(t, "editor");
    for (let i = 0; i < free.seats - 2; i++) {
      expectStatus(await call(`${t.host}/v1/invitations`, { token: t.owner.token, body: { email: `p${i}@example.test`, role: "viewer" } }), 201);
    }
    const over = await call(`${t.host}/v1/invitations`, { token: t.owner.token, body: { email: "one-too-many@example.test", role: "viewer" } });
    expectProblem(over, 403, "PLAN_LIMIT");
    expect(over.body.detail).toContain(`${free.seats} seats`);
    expectStatus(await changePlan(t, "pro"), 200);
    expectStatus(await call(`${t.host}/v1/invitations`, { token: t.owner.token, body: { email: "one-too-many@example.test", role: "viewer" } }), 201);
  });

  it("refuses to accept an invitation after a downgrade took its seat, writing nothing", async () => {
    const t = await createTenant();
    expectStatus(await changePlan(t, "pro"), 200);
    const free = await planRow("free");
    for (let i = 0; i < free.seats - 1; i++) await addMember(t, "viewer");
    const inv = await call(`${t.host}/v1/invitations`, { token: t.owner.token, body: { email: "late@example.test", role: "viewer" } });
    expectStatus(await changePlan(t, "free"), 200);
    const users = async () => (await env.CONTROL_DB.prepare("SELECT count(*) AS n FROM users").first<{ n: number }>())!.n;
    const before = await users();
    expectProblem(await call(`${t.host}/v1/invitations/${inv.body.token}/accept`, { body: { name: "Late", password: PASSWORD } }), 403, "PLAN_LIMIT");
    expect(await users()).toBe(before);
    // The invitation is still there for when a seat frees up.
    expect((await call(`${t.host}/v1/invitations`, { token: t.owner.token })).body.data.map((i: { email: string }) => i.email)).toEqual(["late@example.test"]);
  });

  it("lets only the platform operator change a plan, to a plan that exists", async () => {
    const t = await createTenant();
    expectProblem(await call(`${PLATFORM}/v1/platform/tenants/${t.id}/plan`, { token: t.owner.token, body: { plan: "enterprise" } }), 401, "INVALID_TOKEN");
    const bad = await changePlan(t, "platinum");
    expectProblem(bad, 400, "VALIDATION_FAILED");
    expect(bad.body.errors[0].field).toBe("plan");
    const ok = await changePlan(t, "enterprise");
    expect(ok.body.plan).toBe("enterprise");
    expect((await call(`${t.host}/v1/audit-log?action=tenant.plan_changed`, { token: t.owner.token })).body.data[0].details).toEqual({ from: "free", to: "enterprise" });
  });
});
