import { describe, expect, it } from "vitest";
import { call, createKey, createTenant, expectProblem, expectStatus } from "../harness";

describe("/v1/projects", () => {
  it("creates, gets, updates and deletes a project", async () => {
    const t = await createTenant();
    const created = await call(`${t.host}/v1/projects`, { token: t.owner.token, body: { name: "  Launch  ", description: "Q3 launch" } });
    expectStatus(created, 201);
    expect(created.body).toMatchObject({ name: "Launch", description: "Q3 launch", created_by: t.owner.id });
    expect(created.body.id).toMatch(/^prj_/);
    const id = created.body.id;

    const got = await call(`${t.host}/v1/projects/${id}`, { token: t.owner.token });
    expectStatus(got, 200);
    expect(got.body).toEqual(created.body);

    const patched = await call(`${t.host}/v1/projects/${id}`, { method: "PATCH", token: t.owner.token, body: { description: null } });
    expectStatus(patched, 200);
    expect(patched.body).toMatchObject({ name: "Launch", description: null });
    expect(patched.body.updated_at >= created.body.updated_at).toBe(true);

    expectStatus(await call(`${t.host}/v1/projects/${id}`, { method: "DELETE", token: t.owner.token }), 204);
    expectProblem(await call(`${t.host}/v1/projects/${id}`, { token: t.owner.token }), 404, "NOT_FOUND");
    expectProblem(await call(`${t.host}/v1/projects/${id}`, { method: "DELETE", token: t.owner.token }), 404, "NOT_FOUND");
  });

  it("pages through every project exactly once, newest first", async () => {
    const t = await createTenant();
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const res = await call(`${t.host}/v1/projects`, { token: t.owner.token, body: { name: `P${i}` } });
      ids.push(res.body.id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await call(`${t.host}/v1/projects?limit=3${cursor ? `&cursor=${cursor}` : ""}`, { token: t.owner.token });
      expectStatus(res, 200);
      expect(res.body.data.length).toBeLessThanOrEqual(3);
      seen.push(...res.body.data.map((p: { id: string }) => p.id));
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual([...ids].reverse());
  });

  it("names the bad field for invalid bodies, queries and cursors", async () => {
    const t = await createTenant();
    const bad = await call(`${t.host}/v1/projects`, { token: t.owner.token, body: { name: "", description: 7 } });
    expectProblem(bad, 400, "VALIDATION_FAILED");
    expect(bad.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(["description", "name"]);
    const emptyPatch = await call(`${t.host}/v1/projects/prj_x`, { method: "PATCH", token: t.owner.token, body: {} });
    expectProblem(emptyPatch, 400, "VALIDATION_FAILED");
    const limit = await call(`${t.host}/v1/projects?limit=1000`, { token: t.owner.token });
    expectProblem(limit, 400, "VALIDATION_FAILED");
    expect(limit.body.errors[0]).toMatchObject({ in: "query", field: "limit" });
    // Not even shaped like a cursor: the schema (and the document) refuses it.
    const shapeless = await call(`${t.host}/v1/projects?cursor=garbage!!`, { token: t.owner.token });
    expectProblem(shapeless, 400, "VALIDATION_FAILED");
    expect(shapeless.body.errors[0]).toMatchObject({ in: "query", field: "cursor" });
    // Shaped like one, but not one this list handed out.
    const cursor = await call(`${t.host}/v1/projects?cursor=${btoa("garbage").replace(/=+$/, "")}`, { token: t.owner.token });
    expectProblem(cursor, 400, "INVALID_CURSOR");
    expect(cursor.body.errors[0]).toMatchObject({ in: "query", field: "cursor" });
    expectProblem(await call(`${t.host}/v1/projects`, { method: "POST", token: t.owner.token, rawBody: '{"name":', headers: { "content-type": "application/json" } }), 400, "MALFORMED_JSON");
    expectProblem(await call(`${t.host}/v1/projects`, { method: "POST", token: t.owner.token, rawBody: "name=x", headers: { "content-type": "application/x-www-form-urlencoded" } }), 415, "UNSUPPORTED_MEDIA_TYPE");
    const big = JSON.stringify({ name: "x", description: "y".repeat(1024 * 1024 + 1) });
    expectProblem(await call(`${t.host}/v1/projects`, { method: "POST", token: t.owner.token, rawBody: big, headers: { "content-type": "application/json" } }), 413, "PAYLOAD_TOO_LARGE");
    const list = await call(`${t.host}/v1/projects`, { token: t.owner.token });
    expect(list.body.data).toEqual([]);
  });

  it("hides another tenant's project (404) and refuses its credentials (401)", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const mine = await call(`${a.host}/v1/projects`, { token: a.owner.token, body: { name: "A's secret" } });
    const id = mine.body.id;
    expectProblem(await call(`${b.host}/v1/projects/${id}`, { token: b.owner.token }), 404, "NOT_FOUND");
    expectProblem(await call(`${b.host}/v1/projects/${id}`, { method: "PATCH", token: b.owner.token, body: { name: "pwned" } }), 404, "NOT_FOUND");
    expectProblem(await call(`${b.host}/v1/projects/${id}`, { method: "DELETE", token: b.owner.token }), 404, "NOT_FOUND");
    const listB = await call(`${b.host}/v1/projects`, { token: b.owner.token });
    expect(listB.body.data).toEqual([]);

    expectProblem(await call(`${b.host}/v1/projects/${id}`, { token: a.owner.token }), 401, "INVALID_TOKEN");
    const keyA = await createKey(a, a.owner.token, ["projects:read"]);
    expectProblem(await call(`${b.host}/v1/projects`, { token: keyA.key }), 401, "INVALID_TOKEN");

    const still = await call(`${a.host}/v1/projects/${id}`, { token: keyA.key });
    expectStatus(still, 200);
    expect(still.body.name).toBe("A's secret");
  });
});
