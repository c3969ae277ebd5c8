import { describe, expect, it } from "vitest";
import { call, createTenant, expectProblem, expectStatus, tenantD1 } from "../harness";
import { createConversation, sseEvents } from "../conversations";
import { createAgent, deliverRun, getRun, startRun } from "../runs";

describe("brand personas", () => {
  it("lead an agent's system prompt with their latest version, and each run records the version it used", async () => {
    const t = await createTenant();
    const a = await createAgent(t);
    const made = await call(`${t.host}/v1/personas`, {
      token: t.owner.token,
      body: { project_id: a.projectId, name: "Acme voice", voice: "Warm, plain, a little playful.", audience: "Small bakeries", dos: ["Use short sentences"], donts: ["No jargon"], banned_words: ["synergy"], examples: ["Fresh bread, fresh start."] },
    });
    expectStatus(made, 201);
    expect(made.body).toMatchObject({ latest_version: 1, current: { version: 1, banned_words: ["synergy"] } });
    const personaId = made.body.id as string;
    expectStatus(await call(`${t.host}/v1/agents/${a.agentId}`, { method: "PATCH", token: t.owner.token, body: { persona_id: personaId } }), 200);

    const first = await startRun(t, a, { text: "Write about rye." });
    expect(first.persona).toEqual({ id: personaId, version: 1 });
    const config = async (runId: string) => JSON.parse((await (await tenantD1(t)).prepare("SELECT agent_config FROM runs WHERE id = ?").bind(runId).first<{ agent_config: string }>())!.agent_config) as { system_prompt: string };
    const prompt = (await config(first.id)).system_prompt;
    // The documented order: the persona, then the agent's own prompt.
    expect(prompt.startsWith('You write as the brand persona "Acme voice".')).toBe(true);
    expect(prompt).toContain("Never use these words: synergy.");
    expect(prompt.indexOf("Acme voice")).toBeLessThan(prompt.indexOf("You write."));
    await deliverRun(t, first.id);
    expect((await getRun(t, first.id)).persona).toEqual({ id: personaId, version: 1 });

    const v2 = await call(`${t.host}/v1/personas/${personaId}/versions`, { token: t.owner.token, body: { voice: "Calm and exact.", banned_words: ["synergy", "disrupt"] } });
    expect(v2.body).toMatchObject({ latest_version: 2, current: { version: 2, voice: "Calm and exact." } });
    const second = await startRun(t, a, { text: "Write about spelt." });
    expect(second.persona).toEqual({ id: personaId, version: 2 });
    expect((await config(second.id)).system_prompt).toContain("Calm and exact.");
    // Version 1 is unchanged.
    const versions = await call(`${t.host}/v1/personas/${personaId}/versions`, { token: t.owner.token });
    expect(versions.body.data.map((v: { version: number; voice: string }) => [v.version, v.voice])).toEqual([
      [1, "Warm, plain, a little playful."],
      [2, "Calm and exact."],
    ]);
  });

  it("must be in the agent's project (404 naming persona_id), are another tenant's 404, and leave their agents when deleted", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const a = await createAgent(t);
    const elsewhere = await call(`${t.host}/v1/projects`, { token: t.owner.token, body: { name: "Elsewhere" } });
    const foreign = await call(`${t.host}/v1/personas`, { token: t.owner.token, body: { project_id: elsewhere.body.id, name: "Other", voice: "Loud." } });
    const refused = await call(`${t.host}/v1/agents/${a.agentId}`, { method: "PATCH", token: t.owner.token, body: { persona_id: foreign.body.id } });
    expectProblem(refused, 404, "NOT_FOUND");
    expect(refused.body.errors[0].field).toBe("persona_id");
    expectProblem(await call(`${other.host}/v1/personas/${foreign.body.id}`, { token: other.owner.token }), 404, "NOT_FOUND");
    const own = await call(`${t.host}/v1/personas`, { token: t.owner.token, body: { project_id: a.projectId, name: "Own", voice: "Quiet." } });
    await call(`${t.host}/v1/agents/${a.agentId}`, { method: "PATCH", token: t.owner.token, body: { persona_id: own.body.id } });
    expectStatus(await call(`${t.host}/v1/personas/${own.body.id}`, { method: "DELETE", token: t.owner.token }), 204);
    expect((await call(`${t.host}/v1/agents/${a.agentId}`, { token: t.owner.token })).body.persona_id).toBeNull();
    const run = await startRun(t, a, { text: "No persona now." });
    expect(run.persona).toBeNull();
  });
});

describe("personas in conversations", () => {
  it("lead a conversation's replies, each reply recording the version it used, and a new version reaches the room at once", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    const persona = await call(`${t.host}/v1/personas`, { token: t.owner.token, body: { project_id: conv.projectId, name: "Chatty", voice: "Friendly." } });
    const patched = await call(conv.url, { method: "PATCH", token: t.owner.token, body: { persona_id: persona.body.id } });
    expect(patched.body.persona_id).toBe(persona.body.id);
    const reply = async (content: string) => {
      const sse = await call(`${conv.url}/messages`, { token: t.owner.token, body: { content, reply: true }, headers: { accept: "text/event-stream" } });
      const done = sseEvents(sse.text).find((e) => e.event === "done")!;
      return done.data.message as { persona: { id: string; version: number } | null };
    };
    expect((await reply("Hello")).persona).toEqual({ id: persona.body.id, version: 1 });
    await call(`${t.host}/v1/personas/${persona.body.id}/versions`, { token: t.owner.token, body: { voice: "Brisk." } });
    expect((await reply("Again")).persona).toEqual({ id: persona.body.id, version: 2 });
    const history = await call(`${conv.url}/messages`, { token: t.owner.token });
    expect(history.body.data.filter((m: { role: string }) => m.role === "assistant").map((m: { persona: { version: number } }) => m.persona.version)).toEqual([1, 2]);
    expect(history.body.data[0].persona).toBeNull();
    // Deleted: the conversation and its room stop using it.
    await call(`${t.host}/v1/personas/${persona.body.id}`, { method: "DELETE", token: t.owner.token });
    expect((await call(conv.url, { token: t.owner.token })).body.persona_id).toBeNull();
    expect((await reply("Plain now")).persona).toBeNull();
  });
});
