import { describe, expect, it } from "vitest";
import { createConversation, sseEvents } from "../conversations";
import { addMember, call, createTenant, eventually, expectProblem, expectStatus } from "../harness";

describe("/v1/conversations", () => {
  it("creates, lists by project, gets, updates and deletes conversations", async () => {
    const t = await createTenant();
    const conv = await createConversation(t, { title: "Launch chat", system_prompt: "Be brief.", retention_days: 30 });
    expect(conv.body).toMatchObject({ title: "Launch chat", system_prompt: "Be brief.", model: "@cf/meta/llama-3.1-8b-instruct", retention_days: 30, message_count: 0, last_activity_at: null });
    const other = await createConversation(t);

    const byProject = await call(`${t.host}/v1/conversations?project_id=${conv.projectId}`, { token: t.owner.token });
    expect(byProject.body.data.map((c: { id: string }) => c.id)).toEqual([conv.id]);
    const all = await call(`${t.host}/v1/conversations?limit=1`, { token: t.owner.token });
    expect(all.body.data.map((c: { id: string }) => c.id)).toEqual([other.id]);
    expect(all.body.next_cursor).toEqual(expect.any(String));

    const patched = await call(conv.url, { method: "PATCH", token: t.owner.token, body: { title: "Renamed", model: "@cf/meta/llama-3.3-70b-instruct-fp8-fast" } });
    expectStatus(patched, 200);
    expect(patched.body).toMatchObject({ title: "Renamed", model: "@cf/meta/llama-3.3-70b-instruct-fp8-fast", system_prompt: "Be brief." });
    expect((await call(conv.url, { token: t.owner.token })).body.title).toBe("Renamed");

    expectStatus(await call(conv.url, { method: "DELETE", token: t.owner.token }), 204);
    expectProblem(await call(conv.url, { token: t.owner.token }), 404, "NOT_FOUND");
    expectProblem(await call(`${conv.url}/messages`, { token: t.owner.token }), 404, "NOT_FOUND");
  });

  it("names bad fields, and refuses another tenant's project", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const projectA = await call(`${a.host}/v1/projects`, { token: a.owner.token, body: { name: "A" } });
    const foreign = await call(`${b.host}/v1/conversations`, { token: b.owner.token, body: { project_id: projectA.body.id } });
    expectProblem(foreign, 404, "NOT_FOUND");
    expect(foreign.body.errors[0]).toMatchObject({ field: "project_id" });
    const bad = await call(`${a.host}/v1/conversations`, { token: a.owner.token, body: { project_id: projectA.body.id, model: "rm -rf /", retention_days: 0 } });
    expectProblem(bad, 400, "VALIDATION_FAILED");
    expect(bad.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(["model", "retention_days"]);
  });

  it("stores messages in order with a gap-free seq, and keeps count and last activity in D1", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    for (const content of ["one", "two", "three"]) {
      const res = await call(`${conv.url}/messages`, { token: t.owner.token, body: { content } });
      expectStatus(res, 201);
      expect(res.body).toMatchObject({ role: "user", content, author_id: t.owner.id, status: "complete", reply_id: null });
    }
    const all = await call(`${conv.url}/messages`, { token: t.owner.token });
    expect(all.body.data.map((m: { seq: number; content: string }) => [m.seq, m.content])).toEqual([[1, "one"], [2, "two"], [3, "three"]]);
    const after = await call(`${conv.url}/messages?after=1&limit=1`, { token: t.owner.token });
    expect(after.body.data.map((m: { seq: number }) => m.seq)).toEqual([2]);

    const meta = await eventually(async () => {
      const body = (await call(conv.url, { token: t.owner.token })).body;
      expect(body.message_count).toBe(3);
      return body;
    });
    expect(meta.last_activity_at).toBe(all.body.data[2].created_at);
  });

  it("stores a retried client_id once", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    const first = await call(`${conv.url}/messages`, { token: t.owner.token, body: { content: "hi", client_id: "c-1" } });
    const retry = await call(`${conv.url}/messages`, { token: t.owner.token, body: { content: "hi", client_id: "c-1" } });
    expect(retry.body.id).toBe(first.body.id);
    expect((await call(`${conv.url}/messages`, { token: t.owner.token })).body.data).toHaveLength(1);
  });

  it("answers with the assistant when asked, saying which model and provider", async () => {
    const t = await createTenant();
    const conv = await createConversation(t, { system_prompt: "You are terse." });
    const posted = await call(`${conv.url}/messages`, { token: t.owner.token, body: { content: "What is Tessera?", reply: true } });
    expectStatus(posted, 201);
    expect(posted.body.reply_id).toMatch(/^rpl_/);
    const messages: { role: string; seq: number; content: string; usage: unknown }[] = await eventually(async () => {
      const data = (await call(`${conv.url}/messages`, { token: t.owner.token })).body.data;
      expect(data).toHaveLength(2);
      return data;
    });
    expect(messages[1]).toMatchObject({ seq: 2, role: "assistant", status: "complete", usage: { provider: "local", model: "@cf/meta/llama-3.1-8b-instruct" } });
    expect(messages[1]!.content).toContain("What is Tessera?");
  });

  it("prompts with the system prompt and as much recent history as fits the budget", async () => {
    const t = await createTenant();
    const conv = await createConversation(t, { system_prompt: "Be brief." });
    const ask = async (content: string) => {
      const res = await call(`${conv.url}/messages`, { token: t.owner.token, body: { content, reply: true }, headers: { accept: "text/event-stream" } });
      return JSON.parse(/event: done\ndata: (.*)/.exec(res.text)![1]!).message.content as string;
    };
    // The local model says how many messages its prompt held: the system prompt, then history.
    expect(await ask("first")).toContain("(turn 1, 2 messages in the prompt)");
    expect(await ask("second")).toContain("(turn 3, 4 messages in the prompt)");
    // Four messages of ~1,000 tokens each: only the newest three fit the 3,000-token budget.
    for (let i = 0; i < 3; i++) await call(`${conv.url}/messages`, { token: t.owner.token, body: { content: `${i}`.repeat(4000) } });
    expect(await ask("x".repeat(4000))).toContain("(turn 3, 4 messages in the prompt)");
  });

  it("streams the reply as server-sent events with Accept: text/event-stream", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    const res = await call(`${conv.url}/messages`, { token: t.owner.token, body: { content: "stream please", reply: true }, headers: { accept: "text/event-stream" } });
    expectStatus(res, 200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const events = sseEvents(res.text);
    expect(events[0]).toMatchObject({ event: "message", data: { message: { seq: 1, content: "stream please" } } });
    const deltas = events.filter((e) => e.event === "delta");
    expect(deltas.length).toBeGreaterThan(3);
    const done = events.at(-1)!;
    expect(done).toMatchObject({ event: "done", data: { message: { seq: 2, role: "assistant", usage: { provider: "local" } } } });
    expect(deltas.map((d) => d.data.text).join("")).toBe(done.data.message.content);
  });

  it("lets viewers read but not post, and keeps other tenants out", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    await call(`${conv.url}/messages`, { token: t.owner.token, body: { content: "for all eyes" } });
    const viewer = await addMember(t, "viewer");
    expectStatus(await call(`${conv.url}/messages`, { token: viewer.token }), 200);
    expectProblem(await call(`${conv.url}/messages`, { token: viewer.token, body: { content: "no" } }), 403, "FORBIDDEN");

    const other = await createTenant();
    const foreignUrl = `${other.host}/v1/conversations/${conv.id}`;
    expectProblem(await call(foreignUrl, { token: other.owner.token }), 404, "NOT_FOUND");
    expectProblem(await call(`${foreignUrl}/messages`, { token: other.owner.token }), 404, "NOT_FOUND");
    expectProblem(await call(`${foreignUrl}/messages`, { token: other.owner.token, body: { content: "x" } }), 404, "NOT_FOUND");
    expectProblem(await call(`${conv.url}/messages`, { token: other.owner.token }), 401, "INVALID_TOKEN");
  });
});
