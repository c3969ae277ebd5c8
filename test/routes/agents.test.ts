import { describe, expect, it } from "vitest";
import { addMember, call, createTenant, expectProblem, expectStatus } from "../harness";
import { createAgent, deliverRun, getRun, startRun } from "../runs";

const tool = { name: "search_web", description: "Searches the web", parameters: { type: "object", properties: { query: { type: "string" } }, required: ["query"] } };

describe("agents", () => {
  it("creates, reads, lists, updates and deletes an agent inside a project", async () => {
    const t = await createTenant();
    const project = await call(`${t.host}/v1/projects`, { token: t.owner.token, body: { name: "P" } });
    const body = { project_id: project.body.id, name: "Copywriter", model: "@cf/meta/llama-3.1-8b-instruct", system_prompt: "Be brief.", temperature: 0.4, max_tokens: 300, tools: [tool] };
    const created = await call(`${t.host}/v1/agents`, { token: t.owner.token, body });
    expectStatus(created, 201);
    expect(created.body).toMatchObject({ ...body, prompt_key: null, created_by: t.owner.id });
    const id = created.body.id;
    expect((await call(`${t.host}/v1/agents/${id}`, { token: t.owner.token })).body).toEqual(created.body);
    expect((await call(`${t.host}/v1/agents?project_id=${project.body.id}`, { token: t.owner.token })).body.data.map((a: { id: string }) => a.id)).toEqual([id]);
    const updated = await call(`${t.host}/v1/agents/${id}`, { method: "PATCH", token: t.owner.token, body: { temperature: null, tools: [] } });
    expectStatus(updated, 200);
    expect(updated.body).toMatchObject({ temperature: null, tools: [], name: "Copywriter" });
    expectStatus(await call(`${t.host}/v1/agents/${id}`, { method: "DELETE", token: t.owner.token }), 204);
    expectProblem(await call(`${t.host}/v1/agents/${id}`, { token: t.owner.token }), 404, "NOT_FOUND");
    const audit = await call(`${t.host}/v1/audit-log?resource_id=${id}`, { token: t.owner.token });
    expect(audit.body.data.map((e: { action: string }) => e.action)).toEqual(["agent.deleted", "agent.updated", "agent.created"]);
  });

  it("names the bad field: tools must be JSON Schemas of objects with unique names", async () => {
    const t = await createTenant();
    const project = await call(`${t.host}/v1/projects`, { token: t.owner.token, body: { name: "P" } });
    const post = (extra: Record<string, unknown>) => call(`${t.host}/v1/agents`, { token: t.owner.token, body: { project_id: project.body.id, name: "A", ...extra } });
    const cases: [Record<string, unknown>, string][] = [
      [{ tools: [{ ...tool, parameters: { type: "string" } }] }, "tools.0.parameters.type"],
      [{ tools: [{ ...tool, name: "has space" }] }, "tools.0.name"],
      [{ tools: [tool, tool] }, "tools"],
      [{ temperature: 3 }, "temperature"],
      [{ max_tokens: 0 }, "max_tokens"],
      [{ model: "no spaces allowed" }, "model"],
      [{ name: "" }, "name"],
    ];
    for (const [extra, field] of cases) {
      const res = await post(extra);
      expectProblem(res, 400, "VALIDATION_FAILED");
      expect(res.body.errors.map((e: { field: string }) => e.field), JSON.stringify(extra)).toContain(field);
    }
    const noPrompt = await post({ prompt_key: "missing" });
    expectProblem(noPrompt, 404, "NOT_FOUND");
    expect(noPrompt.body.errors[0].field).toBe("prompt_key");
    expectProblem(await call(`${t.host}/v1/agents`, { token: t.owner.token, body: { project_id: "prj_nope", name: "A" } }), 404, "NOT_FOUND");
    expect((await call(`${t.host}/v1/agents`, { token: t.owner.token })).body.data).toEqual([]);
  });

  it("lets viewers read agents but not change them, and hides them from other tenants", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const a = await createAgent(t);
    const viewer = await addMember(t, "viewer");
    expectStatus(await call(`${t.host}/v1/agents/${a.agentId}`, { token: viewer.token }), 200);
    expectProblem(await call(`${t.host}/v1/agents/${a.agentId}`, { method: "PATCH", token: viewer.token, body: { name: "x" } }), 403, "FORBIDDEN");
    expectProblem(await call(`${other.host}/v1/agents/${a.agentId}`, { token: other.owner.token }), 404, "NOT_FOUND");
    expectProblem(await call(`${other.host}/v1/agents/${a.agentId}`, { method: "DELETE", token: other.owner.token }), 404, "NOT_FOUND");
  });

  it("gives a queued run the agent's settings as they were when it was queued", async () => {
    const t = await createTenant();
    const a = await createAgent(t, { model: "@cf/first/model" });
    const run = await startRun(t, a, { text: "snapshot" });
    expectStatus(await call(`${t.host}/v1/agents/${a.agentId}`, { method: "PATCH", token: t.owner.token, body: { model: "@cf/second/model" } }), 200);
    expectStatus(await call(`${t.host}/v1/agents/${a.agentId}`, { method: "DELETE", token: t.owner.token }), 204);
    await deliverRun(t, run.id);
    expect(await getRun(t, run.id)).toMatchObject({ status: "SUCCEEDED", usage: { model: "@cf/first/model" } });
  });
});
