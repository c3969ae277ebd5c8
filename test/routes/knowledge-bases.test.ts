import { describe, expect, it } from "vitest";
import { addMember, call, createTenant, expectProblem, expectStatus, tenantD1 } from "../harness";

async function project(t: Awaited<ReturnType<typeof createTenant>>) {
  const res = await call(`${t.host}/v1/projects`, { token: t.owner.token, body: { name: "Knowledge" } });
  expectStatus(res, 201);
  return res.body.id as string;
}

describe("knowledge bases", () => {
  it("are created in a project with a fixed embedding and a chunking, listed, changed and deleted", async () => {
    const t = await createTenant();
    const projectId = await project(t);
    const kbs = `${t.host}/v1/knowledge-bases`;
    const created = await call(kbs, { token: t.owner.token, body: { project_id: projectId, name: "Brand guide" } });
    expectStatus(created, 201);
    expect(created.body).toMatchObject({
      project_id: projectId,
      name: "Brand guide",
      description: null,
      embedding: { model: "@cf/baai/bge-base-en-v1.5", dimensions: 768 },
      chunking: { max_tokens: 800, overlap_tokens: 400 },
    });
    expect(created.body.id).toMatch(/^kb_/);
    const small = await call(kbs, { token: t.owner.token, body: { project_id: projectId, name: "FAQ", chunking: { max_tokens: 200 } } });
    expect(small.body.chunking).toEqual({ max_tokens: 200, overlap_tokens: 100 });

    const listed = await call(`${kbs}?project_id=${projectId}&limit=1`, { token: t.owner.token });
    expect(listed.body.data.map((b: { name: string }) => b.name)).toEqual(["FAQ"]);
    const next = await call(`${kbs}?project_id=${projectId}&limit=1&cursor=${listed.body.next_cursor}`, { token: t.owner.token });
    expect(next.body).toMatchObject({ data: [{ name: "Brand guide" }], next_cursor: null });

    const patched = await call(`${kbs}/${created.body.id}`, { method: "PATCH", token: t.owner.token, body: { description: "Tone and words", chunking: { overlap_tokens: 100 } } });
    expectStatus(patched, 200);
    expect(patched.body).toMatchObject({ description: "Tone and words", chunking: { max_tokens: 800, overlap_tokens: 100 } });
    expect((await call(`${kbs}/${created.body.id}`, { token: t.owner.token })).body).toEqual(patched.body);

    expectStatus(await call(`${kbs}/${created.body.id}`, { method: "DELETE", token: t.owner.token }), 204);
    expectProblem(await call(`${kbs}/${created.body.id}`, { token: t.owner.token }), 404, "NOT_FOUND");
    const audit = await call(`${t.host}/v1/audit-log?resource_id=${created.body.id}`, { token: t.owner.token });
    expect(audit.body.data.map((e: { action: string }) => e.action)).toEqual(["knowledge_base.deleted", "knowledge_base.updated", "knowledge_base.created"]);
  });

  it("answer bad input naming the field, another tenant's base with 404, and a viewer's write with 403", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const projectId = await project(t);
    const kbs = `${t.host}/v1/knowledge-bases`;
    const overlap = await call(kbs, { token: t.owner.token, body: { project_id: projectId, name: "x", chunking: { max_tokens: 300, overlap_tokens: 200 } } });
    expectProblem(overlap, 400, "VALIDATION_FAILED");
    expect(overlap.body.errors[0].field).toBe("chunking.overlap_tokens");
    const tiny = await call(kbs, { token: t.owner.token, body: { project_id: projectId, name: "x", chunking: { max_tokens: 50 } } });
    expectProblem(tiny, 400, "VALIDATION_FAILED");
    expect(tiny.body.errors[0].field).toBe("chunking.max_tokens");
    const elsewhere = await call(kbs, { token: t.owner.token, body: { project_id: await project(other), name: "x" } });
    expectProblem(elsewhere, 404, "NOT_FOUND");
    expect(elsewhere.body.errors[0].field).toBe("project_id");
    expectProblem(await call(`${kbs}/kb_absent`, { method: "PATCH", token: t.owner.token, body: {} }), 400, "VALIDATION_FAILED");

    const mine = (await call(kbs, { token: t.owner.token, body: { project_id: projectId, name: "Mine" } })).body;
    expectProblem(await call(`${other.host}/v1/knowledge-bases/${mine.id}`, { token: other.owner.token }), 404, "NOT_FOUND");
    expectProblem(await call(`${other.host}/v1/knowledge-bases/${mine.id}`, { method: "DELETE", token: other.owner.token }), 404, "NOT_FOUND");
    expect((await call(`${other.host}/v1/knowledge-bases`, { token: other.owner.token })).body.data).toEqual([]);

    const viewer = await addMember(t, "viewer");
    expectStatus(await call(`${kbs}/${mine.id}`, { token: viewer.token }), 200);
    expectProblem(await call(kbs, { token: viewer.token, body: { project_id: projectId, name: "No" } }), 403, "FORBIDDEN");
  });

  it("are at most 50 to a project", async () => {
    const t = await createTenant();
    const projectId = await project(t);
    const d1 = await tenantD1(t);
    // 49 written directly, then the 50th and 51st through the API.
    await d1.batch(
      Array.from({ length: 49 }, (_, i) =>
        d1.prepare("INSERT INTO knowledge_bases (id, tenant_id, project_id, name, embedding_model, dimensions, chunk_max_tokens, chunk_overlap_tokens, created_by) VALUES (?, ?, ?, 'x', 'm', 768, 800, 400, 'u')").bind(`kb_filler${i}`, t.id, projectId),
      ),
    );
    expectStatus(await call(`${t.host}/v1/knowledge-bases`, { token: t.owner.token, body: { project_id: projectId, name: "fiftieth" } }), 201);
    const over = await call(`${t.host}/v1/knowledge-bases`, { token: t.owner.token, body: { project_id: projectId, name: "one too many" } });
    expectProblem(over, 403, "PLAN_LIMIT");
    expect(over.body.errors[0].field).toBe("project_id");
  });
});
