import { describe, expect, it } from "vitest";
import { call, createTenant, expectProblem, expectStatus, PLATFORM } from "./harness";

describe("operations", () => {
  it("answers /health with the providers it uses", async () => {
    const res = await call(`${PLATFORM}/health`);
    expectStatus(res, 200);
    expect(res.body).toEqual({ status: "ok", providers: { ai: "local", vectors: "local", publisher: "local" } });
    expect(res.headers.get("x-request-id")).toMatch(/^req_/);
  });

  it("echoes a sane X-Request-Id and replaces an unsafe one", async () => {
    const kept = await call(`${PLATFORM}/health`, { headers: { "x-request-id": "client-abc-12345" } });
    expect(kept.headers.get("x-request-id")).toBe("client-abc-12345");
    const replaced = await call(`${PLATFORM}/health`, { headers: { "x-request-id": "bad id with spaces" } });
    expect(replaced.headers.get("x-request-id")).toMatch(/^req_/);
  });

  it("serves an OpenAPI 3.1 document generated from the route schemas", async () => {
    const res = await call(`${PLATFORM}/openapi.json`);
    expectStatus(res, 200);
    expect(res.body.openapi).toBe("3.1.0");
    for (const path of ["/v1/signup", "/v1/auth/login", "/v1/projects", "/v1/projects/{id}", "/v1/api-keys", "/v1/members/{userId}", "/v1/platform/domains"]) {
      expect(Object.keys(res.body.paths)).toContain(path);
    }
    expect(res.body.paths["/v1/projects"].post.requestBody.content["application/json"].schema).toBeDefined();
    expect(res.body.components.schemas.Problem.properties.code.enum).toContain("VALIDATION_FAILED");
  });

  it("serves a docs UI", async () => {
    const res = await call(`${PLATFORM}/docs`);
    expectStatus(res, 200);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(res.text).toContain("/openapi.json");
  });

  it("answers an unknown route with a 404 problem", async () => {
    const t = await createTenant();
    expectProblem(await call(`${t.host}/v1/nothing-here`, { token: t.owner.token }), 404, "NOT_FOUND");
    expectProblem(await call(`${PLATFORM}/v1/nowhere`), 404, "NOT_FOUND");
    // Outside the API a path is the console's: a missing file is a 404 (test/console.test.ts has the rest).
    expect((await call(`${PLATFORM}/nowhere.js`)).status).toBe(404);
  });

  it("answers an unknown host with a 404 problem", async () => {
    expectProblem(await call("http://no-such-tenant.localhost/v1/projects"), 404, "TENANT_NOT_FOUND");
    expectProblem(await call("http://unknown.example.com/v1/projects"), 404, "TENANT_NOT_FOUND");
  });

  it("keeps tenant routes off the platform host and platform routes off tenant hosts", async () => {
    const t = await createTenant();
    expectProblem(await call(`${PLATFORM}/v1/projects`, { token: t.owner.token }), 404, "NOT_FOUND");
    expectProblem(await call(`${t.host}/v1/signup`, { body: {} }), 404, "NOT_FOUND");
  });
});

describe("browsers", () => {
  it("answers a CORS preflight for any origin, before host and auth checks", async () => {
    const t = await createTenant();
    const res = await call(`${t.host}/v1/projects`, {
      method: "OPTIONS",
      headers: { origin: "https://app.customer.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" },
    });
    expectStatus(res, 204);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(res.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
    expect(res.headers.get("access-control-allow-methods")).toContain("PATCH");
  });

  it("lets a page read the request id and problem of a cross-origin call", async () => {
    const t = await createTenant();
    const res = await call(`${t.host}/v1/projects`, { headers: { origin: "https://app.customer.example" } });
    expectProblem(res, 401, "UNAUTHENTICATED");
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(res.headers.get("access-control-expose-headers")).toContain("X-Request-Id");
  });
});

describe("the OpenAPI document", () => {
  it("documents every route the app serves, and nothing it does not", async () => {
    const { createApp } = await import("../src/app");
    const app = createApp();
    const toOpenApi = (path: string) => path.replace(/:(\w+)/g, "{$1}");
    const served = new Set(
      app.routes
        .filter((r) => r.method !== "ALL" && r.path.startsWith("/") && !["/openapi.json", "/docs"].includes(r.path))
        .map((r) => `${r.method.toLowerCase()} ${toOpenApi(r.path)}`),
    );
    const doc = (await call(`${PLATFORM}/openapi.json`)).body as { paths: Record<string, Record<string, unknown>> };
    const documented = new Set(Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`)));
    expect(served.size).toBeGreaterThan(20);
    expect([...served].sort()).toEqual([...documented].sort());
  });
});
