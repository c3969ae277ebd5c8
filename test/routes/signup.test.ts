import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, createTenant, expectProblem, expectStatus, hostOf, PASSWORD, PLATFORM, uniqueSlug } from "../harness";

const signup = (body: unknown) => call(`${PLATFORM}/v1/signup`, { body });

describe("POST /v1/signup", () => {
  it("creates the tenant, its owner and tokens, and gives it its own database", async () => {
    const slug = uniqueSlug();
    const res = await signup({ tenant: { name: "Acme", slug }, user: { email: `Boss@${slug}.Test`, password: PASSWORD, name: "Boss" } });
    expectStatus(res, 201);
    expect(res.body.tenant).toMatchObject({ slug, name: "Acme", status: "active", plan: "free" });
    expect(res.body.tenant.id).toMatch(/^ten_/);
    expect(res.body.user).toMatchObject({ email: `boss@${slug}.test`, name: "Boss" });
    expect(res.body).toMatchObject({ token_type: "Bearer", expires_in: 600, access_token: expect.any(String), refresh_token: expect.stringMatching(/^rt_/) });
    expect(JSON.stringify(res.body)).not.toContain("password");

    const row = await env.CONTROL_DB.prepare("SELECT db_binding FROM tenants WHERE id = ?").bind(res.body.tenant.id).first<{ db_binding: string }>();
    const pool = await env.CONTROL_DB.prepare("SELECT tenant_id FROM tenant_databases WHERE binding = ?").bind(row!.db_binding).first<{ tenant_id: string }>();
    expect(pool!.tenant_id).toBe(res.body.tenant.id);

    const me = await call(`${hostOf(slug)}/v1/me`, { token: res.body.access_token });
    expectStatus(me, 200);
    expect(me.body).toMatchObject({ role: "owner", tenant: { slug } });
  });

  it("refuses a taken slug with 409 and writes nothing", async () => {
    const t = await createTenant();
    const before = await env.CONTROL_DB.prepare("SELECT count(*) AS n FROM users").first<{ n: number }>();
    const res = await signup({ tenant: { name: "Again", slug: t.slug }, user: { email: `x@${uniqueSlug()}.test`, password: PASSWORD, name: "X" } });
    expectProblem(res, 409, "SLUG_TAKEN");
    expect(res.body.errors).toEqual([{ in: "body", field: "tenant.slug", message: "taken" }]);
    const after = await env.CONTROL_DB.prepare("SELECT count(*) AS n FROM users").first<{ n: number }>();
    expect(after!.n).toBe(before!.n);
  });

  it("gives a slug to exactly one of two racing signups", async () => {
    const slug = uniqueSlug();
    const body = (n: number) => ({ tenant: { name: "Race", slug }, user: { email: `r${n}@${slug}.test`, password: PASSWORD, name: "R" } });
    const results = await Promise.all([signup(body(1)), signup(body(2))]);
    expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
    const tenantsWithSlug = await env.CONTROL_DB.prepare("SELECT count(*) AS n FROM tenants WHERE slug = ?").bind(slug).first<{ n: number }>();
    expect(tenantsWithSlug!.n).toBe(1);
    const loser = results.find((r) => r.status === 409)!;
    expect(loser.body.code).toBe("SLUG_TAKEN");
    const orphan = await env.CONTROL_DB.prepare("SELECT count(*) AS n FROM users WHERE email LIKE ?").bind(`r_@${slug}.test`).first<{ n: number }>();
    expect(orphan!.n).toBe(1);
  });

  it("names every invalid field", async () => {
    const res = await signup({ tenant: { name: "", slug: "Not_A-Label-" }, user: { email: "nope", password: "short", name: "N" } });
    expectProblem(res, 400, "VALIDATION_FAILED");
    const fields = res.body.errors.map((e: { field: string }) => e.field).sort();
    expect(fields).toEqual(["tenant.name", "tenant.slug", "user.email", "user.password"]);
    expect(res.body.errors.every((e: { in: string }) => e.in === "body")).toBe(true);
  });

  it("refuses reserved slugs and labels longer than DNS allows", async () => {
    const reserved = await signup({ tenant: { name: "W", slug: "www" }, user: { email: `w@${uniqueSlug()}.test`, password: PASSWORD, name: "W" } });
    expectProblem(reserved, 400, "VALIDATION_FAILED");
    expect(reserved.body.errors[0]).toMatchObject({ field: "tenant.slug", message: "reserved for the platform" });
    const long = await signup({ tenant: { name: "L", slug: "a".repeat(64) }, user: { email: `l@${uniqueSlug()}.test`, password: PASSWORD, name: "L" } });
    expectProblem(long, 400, "VALIDATION_FAILED");
  });

  it("lets an existing user found a second tenant only with their own password", async () => {
    const first = await createTenant();
    const wrong = await signup({ tenant: { name: "Two", slug: uniqueSlug() }, user: { email: first.owner.email, password: "not the password", name: "O" } });
    expectProblem(wrong, 409, "EMAIL_TAKEN");
    const slug = uniqueSlug();
    const right = await signup({ tenant: { name: "Two", slug }, user: { email: first.owner.email, password: PASSWORD, name: "O" } });
    expectStatus(right, 201);
    expect(right.body.user.id).toBe(first.owner.id);
  });

  it("answers malformed JSON, a non-JSON body and an oversized body with problems", async () => {
    expectProblem(await call(`${PLATFORM}/v1/signup`, { method: "POST", rawBody: "{", headers: { "content-type": "application/json" } }), 400, "MALFORMED_JSON");
    expectProblem(await call(`${PLATFORM}/v1/signup`, { method: "POST", rawBody: "a=b", headers: { "content-type": "text/plain" } }), 415, "UNSUPPORTED_MEDIA_TYPE");
    const big = JSON.stringify({ tenant: { name: "x".repeat(1024 * 1024), slug: uniqueSlug() } });
    expectProblem(await call(`${PLATFORM}/v1/signup`, { method: "POST", rawBody: big, headers: { "content-type": "application/json" } }), 413, "PAYLOAD_TOO_LARGE");
  });
});
