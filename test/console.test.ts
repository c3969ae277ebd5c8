import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, createTenant, expectProblem, PLATFORM } from "./harness";

describe("the console, served as static assets beside the API", () => {
  it("answers its page on every host and for its own routes, a 404 for a missing file, problem+json for the API", async () => {
    const t = await createTenant();
    for (const url of [`${PLATFORM}/`, `${t.host}/`, `${t.host}/projects`, `${t.host}/projects/prj_x/agents`]) {
      const res = await SELF.fetch(url);
      expect(res.status, url).toBe(200);
      expect(res.headers.get("content-type"), url).toMatch(/^text\/html/);
      expect(await res.text(), url).toContain('<div id="app">');
    }
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(await (await SELF.fetch(`${t.host}/`)).text())![1]!;
    expect((await SELF.fetch(`${t.host}${script}`)).status).toBe(200);
    // A file that is not there is a 404, never the app page.
    for (const path of ["/assets/missing.js", "/favicon.ico", "/projects/report.csv"]) {
      const res = await SELF.fetch(`${t.host}${path}`);
      expect(res.status, path).toBe(404);
      expect(await res.text(), path).not.toContain('<div id="app">');
    }
    // An unknown API path is still the API's problem+json 404; so is any method but GET on a page.
    expectProblem(await call(`${t.host}/v1/nothing-here`), 404, "NOT_FOUND");
    expectProblem(await call(`${t.host}/projects`, { method: "POST", body: {} }), 404, "NOT_FOUND");
  });

  it("tells the console where it is: the platform, a tenant, or nowhere", async () => {
    const t = await createTenant();
    expect((await call(`${PLATFORM}/.well-known/tessera-host`)).body).toEqual({ kind: "platform", base_domain: "localhost" });
    expect((await call(`${t.host}/.well-known/tessera-host`)).body).toEqual({ kind: "tenant", base_domain: "localhost", tenant: { id: t.id, slug: t.slug, name: `Tenant ${t.slug}` } });
    expectProblem(await call("http://nobody-here.localhost/.well-known/tessera-host"), 404, "TENANT_NOT_FOUND");
  });

  it("serves the API reference and its script itself, so /docs works offline", async () => {
    const docs = await SELF.fetch(`${PLATFORM}/docs`);
    const html = await docs.text();
    expect(html).toContain('src="/docs/scalar.js"');
    expect(html).not.toContain("cdn.jsdelivr.net");
    const script = await SELF.fetch(`${PLATFORM}/docs/scalar.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toMatch(/javascript/);
    expect((await script.arrayBuffer()).byteLength).toBeGreaterThan(1_000_000);
  });
});
