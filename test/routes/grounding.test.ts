import { describe, expect, it } from "vitest";
import { createConversation, sseEvents } from "../conversations";
import { call, createTenant, expectProblem, expectStatus, quota } from "../harness";
import { addDocument, createBase } from "../knowledge";
import { countRows, deliverRun, getRun, runEvents, startRun } from "../runs";
import { open } from "../ws";

const COLOURS = "Our primary colour is ultramarine blue. Buttons use saffron yellow as the accent colour.";
const SHIPPING = "Orders ship from Rotterdam within two working days.";

describe("grounding in knowledge bases", () => {
  it("grounds a run in its agent's bases: run.retrieved names the chunks, the output cites them", async () => {
    const t = await createTenant();
    const { baseId, projectId } = await createBase(t);
    const colours = await addDocument(t, baseId, "colours.md", COLOURS);
    await addDocument(t, baseId, "shipping.md", SHIPPING);
    const agent = await call(`${t.host}/v1/agents`, { token: t.owner.token, body: { project_id: projectId, name: "Brand writer", knowledge_base_ids: [baseId] } });
    expectStatus(agent, 201);
    expect(agent.body.knowledge_base_ids).toEqual([baseId]);
    const before = await quota(t);
    const run = await startRun(t, { projectId, agentId: agent.body.id }, { text: "Which colour do our buttons use?" });
    await deliverRun(t, run.id);
    const done = await getRun(t, run.id);
    expect(done.status).toBe("SUCCEEDED");
    expect(done.citations[0]).toMatchObject({ index: 1, document_id: colours.id, document_name: "colours.md", knowledge_base_id: baseId });
    expect(done.citations[0].chunk_id).toMatch(/^chk_/);
    expect(done.output).toContain("Sources: [1] colours.md");
    const events = await runEvents(t, run.id);
    expect(events.map((e) => e.type)).toEqual(["run.created", "run.started", "run.retrieved", "run.succeeded"]);
    expect(events[2]!.data.chunk_ids).toEqual(done.citations.map((c: { chunk_id: string }) => c.chunk_id));
    expect(events[3]!.data.citations).toEqual(done.citations);
    // The retrieval's embedding is metered under its own reference; nothing stays reserved.
    expect(await countRows(t, "SELECT count(*) AS n FROM usage_events WHERE id = ?", `use_${run.id}.retrieval.1`)).toBe(1);
    expect((await quota(t)).reserved).toBe(before.reserved);
    // An agent without bases runs ungrounded, as before.
    const plain = await call(`${t.host}/v1/agents`, { token: t.owner.token, body: { project_id: projectId, name: "Plain" } });
    const ungrounded = await startRun(t, { projectId, agentId: plain.body.id }, { text: "Which colour do our buttons use?" });
    await deliverRun(t, ungrounded.id);
    expect(await getRun(t, ungrounded.id)).toMatchObject({ status: "SUCCEEDED", citations: null });
  });

  it("grounds a conversation's replies: citations in the done frame and the SSE done event", async () => {
    const t = await createTenant();
    const { baseId, projectId } = await createBase(t);
    const shipping = await addDocument(t, baseId, "shipping.md", SHIPPING);
    const conv = await call(`${t.host}/v1/conversations`, { token: t.owner.token, body: { project_id: projectId, knowledge_base_ids: [baseId] } });
    expectStatus(conv, 201);
    const url = `${t.host}/v1/conversations/${conv.body.id}`;

    const ws = await open(`${url}/connect`, t.owner.token);
    ws.send({ type: "message", content: "Where do orders ship from?", reply: true });
    const done = await ws.next("done");
    expect(done.citations).toEqual([expect.objectContaining({ index: 1, document_id: shipping.id, document_name: "shipping.md" })]);
    expect(done.message.content).toContain("Sources: [1] shipping.md");
    ws.close();
    // Stored with the reply: history shows its sources after a reload.
    const history = await call(`${url}/messages`, { token: t.owner.token });
    expect(history.body.data.at(-1)).toMatchObject({ role: "assistant", citations: done.citations });
    expect(history.body.data[0].citations).toBeNull();

    const sse = await call(`${url}/messages`, { token: t.owner.token, body: { content: "How fast do orders ship?", reply: true }, headers: { accept: "text/event-stream" } });
    const last = sseEvents(sse.text).at(-1)!;
    expect(last).toMatchObject({ event: "done", data: { citations: [{ document_id: shipping.id }] } });

    // Dropping the bases makes replies ungrounded again.
    const patched = await call(url, { method: "PATCH", token: t.owner.token, body: { knowledge_base_ids: [] } });
    expect(patched.body.knowledge_base_ids).toEqual([]);
    const again = await open(`${url}/connect`, t.owner.token);
    again.send({ type: "message", content: "Where do orders ship from?", reply: true });
    const plain = await again.next("done", (f) => f.message.seq > 4);
    expect(plain.citations).toBeUndefined();
    again.close();
  });

  it("accepts only the tenant's bases of the same project, naming the field", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const { baseId, projectId } = await createBase(t);
    const { baseId: elsewhere } = await createBase(t);
    const { baseId: foreign } = await createBase(other);
    const cases: [string, number][] = [
      [elsewhere, 400],
      [foreign, 404],
      ["kb_missing", 404],
    ];
    for (const [id, status] of cases) {
      for (const path of ["/v1/agents", "/v1/conversations"]) {
        const res = await call(`${t.host}${path}`, { token: t.owner.token, body: { project_id: projectId, name: "x", knowledge_base_ids: [baseId, id] } });
        expectProblem(res, status, status === 400 ? "VALIDATION_FAILED" : "NOT_FOUND");
        expect(res.body.errors[0].field).toBe("knowledge_base_ids");
      }
    }
    const conv = await createConversation(t);
    const patch = await call(conv.url, { method: "PATCH", token: t.owner.token, body: { knowledge_base_ids: [baseId] } });
    expectProblem(patch, 400, "VALIDATION_FAILED");
  });

  it("drops a deleted base from the agents and conversations that named it", async () => {
    const t = await createTenant();
    const { baseId, projectId } = await createBase(t);
    const { baseId: kept } = await createBase(t, { name: "Kept" }, projectId);
    const agent = await call(`${t.host}/v1/agents`, { token: t.owner.token, body: { project_id: projectId, name: "A", knowledge_base_ids: [baseId, kept] } });
    const conv = await call(`${t.host}/v1/conversations`, { token: t.owner.token, body: { project_id: projectId, knowledge_base_ids: [baseId] } });
    expectStatus(await call(`${t.host}/v1/knowledge-bases/${baseId}`, { method: "DELETE", token: t.owner.token }), 204);
    expect((await call(`${t.host}/v1/agents/${agent.body.id}`, { token: t.owner.token })).body.knowledge_base_ids).toEqual([kept]);
    expect((await call(`${t.host}/v1/conversations/${conv.body.id}`, { token: t.owner.token })).body.knowledge_base_ids).toEqual([]);
  });
});
