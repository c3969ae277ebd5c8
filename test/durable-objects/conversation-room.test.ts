import { env, evictAllDurableObjects, runDurableObjectAlarm, runInDurableObject, SELF } from "cloudflare:test";
import { decodeJwt } from "jose";
import { describe, expect, it, vi } from "vitest";
import type { ConversationRoom } from "../../durable-objects/conversation-room";
import { tenantBinding } from "../../src/db/router";
import { LOCAL_FAILURE_TRIGGER } from "../../src/providers/ai/local";
import { createConversation } from "../conversations";
import { addMember, call, createTenant, eventually, expectStatus, quota, tenantD1, type TestTenant } from "../harness";
import { countRows, debits } from "../runs";
import { connect, open } from "../ws";

const roomOf = (t: TestTenant, conversationId: string) => env.CONVERSATION_ROOM.get(env.CONVERSATION_ROOM.idFromName(`${t.id}:${conversationId}`));

describe("ConversationRoom over WebSockets", () => {
  it("gives two participants the same ordered, gap-free stream, echoing client_id to its sender", async () => {
    const t = await createTenant();
    const editor = await addMember(t, "editor");
    const conv = await createConversation(t);
    const a = await open(`${conv.url}/connect`, t.owner.token);
    const b = await open(`${conv.url}/connect`, editor.token);
    await a.next("presence", (f) => f.participants.length === 2);

    for (let i = 0; i < 3; i++) a.send({ type: "message", content: `a${i}`, client_id: `a-${i}` });
    for (let i = 0; i < 2; i++) b.send({ type: "message", content: `b${i}` });
    const seen = async (s: typeof a) => {
      const got = [];
      for (let i = 0; i < 5; i++) got.push((await s.next("message")) as unknown as { message: { seq: number; content: string }; client_id?: string });
      return got;
    };
    const [fromA, fromB] = await Promise.all([seen(a), seen(b)]);
    expect(fromA.map((f) => f.message.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(fromB.map((f) => f.message.content)).toEqual(fromA.map((f) => f.message.content));
    expect(fromA.filter((f) => f.client_id).map((f) => f.client_id)).toEqual(["a-0", "a-1", "a-2"]);
    expect(fromB.some((f) => f.client_id)).toBe(false);
    const history = await call(`${conv.url}/messages`, { token: t.owner.token });
    expect(history.body.data.map((m: { content: string }) => m.content)).toEqual(fromA.map((f) => f.message.content));

    a.send({ type: "typing" });
    expect(await b.next("typing")).toEqual({ type: "typing", user_id: t.owner.id });
    a.send({ type: "ping" });
    await a.next("pong");
    expect(a.frames.some((f) => f.type === "typing")).toBe(false);
    b.close();
    const presence = await a.next("presence", (f) => f.participants.length === 1);
    expect(presence.participants).toEqual([{ user_id: t.owner.id, role: "owner", connections: 1 }]);
    a.close();
  });

  it("streams an assistant reply to every participant in deltas that end in done", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    const a = await open(`${conv.url}/connect`, t.owner.token);
    const b = await open(`${conv.url}/connect`, t.owner.token);
    a.send({ type: "message", content: "tell me something", reply: true });
    for (const s of [a, b]) {
      const done = await s.next("done");
      const deltas = s.frames.filter((f) => f.type === "delta" && f.reply_id === done.reply_id);
      expect(deltas.length).toBeGreaterThan(3);
      expect(deltas.map((d) => d.text).join("")).toBe(done.message.content);
      expect(done.message).toMatchObject({ seq: 2, role: "assistant", status: "complete", usage: { provider: "local", tokens_in: expect.any(Number), tokens_out: expect.any(Number) } });
    }
    a.close();
    b.close();
  });

  it("resumes a reconnecting client: what it missed, then the reply so far, then the rest live", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    await call(`${conv.url}/messages`, { token: t.owner.token, body: { content: "earlier" } });
    const a = await open(`${conv.url}/connect`, t.owner.token);
    // A long message makes a long local reply (it quotes up to 200 characters), so it is still streaming on reconnect.
    a.send({ type: "message", content: "a long answer please ".repeat(10), reply: true });
    await a.next("delta");
    await a.next("delta");

    const late = await open(`${conv.url}/connect`, t.owner.token);
    late.send({ type: "resume", after_seq: 0 });
    const m1 = await late.next("message");
    const m2 = await late.next("message");
    expect([m1.message.seq, m2.message.seq]).toEqual([1, 2]);
    const soFar = await late.next("delta");
    expect(soFar.text.length).toBeGreaterThan(0);
    const done = await late.next("done");
    const rest = late.frames.filter((f) => f.type === "delta" && f.reply_id === done.reply_id);
    expect(rest.map((d) => d.text).join("")).toBe(done.message.content);
    a.close();
    late.close();
  });

  it("keeps streaming to the sockets when a server-sent-events caller goes away", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    const s = await open(`${conv.url}/connect`, t.owner.token);
    const res = await SELF.fetch(`${conv.url}/messages`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.owner.token}`, "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ content: "start and leave", reply: true }),
    });
    const reader = res.body!.getReader();
    let seen = "";
    while (!seen.includes("event: delta")) seen += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    const done = await s.next("done");
    expect(done.message).toMatchObject({ status: "complete", role: "assistant" });
    s.close();
  });

  it("stops a reply on cancel and stores it as canceled", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    const a = await open(`${conv.url}/connect`, t.owner.token);
    a.send({ type: "message", content: "go on and on ".repeat(15), reply: true });
    const first = await a.next("delta");
    a.send({ type: "cancel", reply_id: first.reply_id });
    const done = await a.next("done");
    expect(done.message.status).toBe("canceled");
    const full = await call(`${conv.url}/messages`, { token: t.owner.token });
    expect(full.body.data[1]).toMatchObject({ status: "canceled", content: done.message.content });
    a.send({ type: "cancel", reply_id: first.reply_id });
    expect((await a.next("error")).code).toBe("NOT_FOUND");
    a.close();
  });

  it("ends a failed reply with an error frame and a stored failed marker, never a stuck stream", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    const a = await open(`${conv.url}/connect`, t.owner.token);
    a.send({ type: "message", content: `please ${LOCAL_FAILURE_TRIGGER}`, reply: true });
    const error = await a.next("error");
    expect(error).toMatchObject({ code: "PROVIDER_ERROR", reply_id: expect.stringMatching(/^rpl_/) });
    const marker = await a.next("message", (f) => f.message.role === "assistant");
    expect(marker.message).toMatchObject({ seq: 2, status: "failed", error: "provider_error" });
    a.send({ type: "message", content: "after the failure" });
    expect((await a.next("message", (f) => f.message.role === "user" && f.message.seq === 3)).message.content).toBe("after the failure");
    a.close();
  });

  it("lets a viewer read but answers their post with FORBIDDEN, keeping the socket open", async () => {
    const t = await createTenant();
    const viewer = await addMember(t, "viewer");
    const conv = await createConversation(t);
    const v = await open(`${conv.url}/connect`, viewer.token);
    v.send({ type: "message", content: "may I?" });
    expect((await v.next("error")).code).toBe("FORBIDDEN");
    await call(`${conv.url}/messages`, { token: t.owner.token, body: { content: "from the owner" } });
    expect((await v.next("message")).message.content).toBe("from the owner");
    v.send({ type: "ping" });
    await v.next("pong");
    expect((await call(`${conv.url}/messages`, { token: t.owner.token })).body.data).toHaveLength(1);
    v.close();
  });

  it("answers malformed and oversized frames with error frames and stays open", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    const s = await open(`${conv.url}/connect`, t.owner.token);
    s.send("not json");
    expect((await s.next("error")).code).toBe("INVALID_FRAME");
    s.send({ type: "dance" });
    expect((await s.next("error")).code).toBe("INVALID_FRAME");
    s.send({ type: "message", content: "" });
    expect((await s.next("error")).message).toContain("content");
    s.send({ type: "message", content: "x".repeat(70 * 1024) });
    expect((await s.next("error")).code).toBe("FRAME_TOO_LARGE");
    s.send({ type: "ping" });
    await s.next("pong");
    expect((await call(`${conv.url}/messages`, { token: t.owner.token })).body.data).toEqual([]);
    s.close();
  });

  it("answers a database failure inside a frame with an error frame, stores nothing, and stays open", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    const s = await open(`${conv.url}/connect`, t.owner.token);
    // The tenant's database refuses the reply's reservation (its table is gone).
    const d1 = await tenantD1(t);
    await d1.exec("ALTER TABLE quota_holds RENAME TO quota_holds_away");
    s.send({ type: "message", content: "needs a reply", reply: true });
    const failed = await s.next("error");
    expect(failed).toMatchObject({ code: "INTERNAL_ERROR" });
    expect(failed.message).not.toMatch(/quota_holds|D1_ERROR|SQLITE/);
    await d1.exec("ALTER TABLE quota_holds_away RENAME TO quota_holds");
    // The socket is still open and the log has nothing of the failed post.
    s.send({ type: "message", content: "still here" });
    expect((await s.next("message")).message).toMatchObject({ seq: 1, content: "still here" });
    s.close();
  });

  it("refuses other tenants and missing credentials before any upgrade", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const conv = await createConversation(t);
    const foreign = await connect(`${other.host}/v1/conversations/${conv.id}/connect`, other.owner.token);
    expect(foreign.status).toBe(404);
    expect((await connect(`${conv.url}/connect`, other.owner.token)).status).toBe(401);
    expect((await connect(`${conv.url}/connect`, undefined)).status).toBe(401);
    const plain = await call(`${conv.url}/connect`, { token: t.owner.token });
    expect(plain.status).toBe(426);
  });

  it("accepts a browser's token as a subprotocol or a query parameter, without echoing it", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    const viaProtocol = await open(`${conv.url}/connect`, t.owner.token, "protocol");
    expect(viaProtocol.protocol).toBe("tessera.v1");
    const viaQuery = await open(`${conv.url}/connect`, t.owner.token, "query");
    viaProtocol.close();
    viaQuery.close();
  });

  it("closes a socket (4401) once the credential that opened it has expired", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    const { exp } = decodeJwt(t.owner.token);
    const s = await open(`${conv.url}/connect`, t.owner.token);
    const closed = new Promise<number>((resolve) => s.ws.addEventListener("close", (e) => resolve(e.code)));
    s.send({ type: "message", content: "while valid" });
    expect((await s.next("message")).message.content).toBe("while valid");
    // The clock moves past the token's expiry rather than being waited for.
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(exp! * 1000 + 1000);
      s.send({ type: "message", content: "too late" });
      expect(await closed).toBe(4401);
    } finally {
      vi.useRealTimers();
    }
    const stored = await call(`${conv.url}/messages`, { token: t.owner.token });
    expect(stored.body.data.map((m: { content: string }) => m.content)).toEqual(["while valid"]);
  });

  it("keeps its log and its sockets across hibernation", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    const s = await open(`${conv.url}/connect`, t.owner.token);
    s.send({ type: "message", content: "before" });
    await s.next("message");
    await evictAllDurableObjects();
    expectStatus(await call(`${conv.url}/messages`, { token: t.owner.token, body: { content: "after" } }), 201);
    const after = await s.next("message");
    expect(after.message).toMatchObject({ seq: 2, content: "after" });
    s.send({ type: "message", content: "from the same socket" });
    expect((await s.next("message")).message.seq).toBe(3);
    s.close();
  });

  it("bills a reply cut off by the room's eviction exactly once, for what it had streamed", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    const s = await open(`${conv.url}/connect`, t.owner.token);
    // A long message makes a long local reply (it quotes up to 200 characters): it is mid-stream when the room goes.
    s.send({ type: "message", content: "a long answer please ".repeat(10), reply: true });
    const { reply_id: replyId } = await s.next("delta");
    await s.next("delta");
    // Killed, as an eviction or a crash kills it: the instance is gone at once, its reply with it.
    await runInDurableObject(roomOf(t, conv.id), (_room, state) => state.abort("killed mid-reply")).catch(() => {});
    expect(await quota(t)).toMatchObject({ used: 0, reserved: expect.any(Number) });
    expect((await quota(t)).reserved).toBeGreaterThan(1024);

    // The next instance finds the reply unbilled on its check (moved forward here rather than waited for).
    const stub = roomOf(t, conv.id);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const messages = (await call(`${conv.url}/messages`, { token: t.owner.token })).body.data;
    expect(messages).toHaveLength(2);
    expect(messages[1]).toMatchObject({ role: "assistant", status: "failed", error: "interrupted" });
    expect(messages[1].content.length).toBeGreaterThan(0);
    const billed = await quota(t);
    expect(billed.reserved).toBe(0);
    expect(billed.used).toBeGreaterThan(0);
    expect(await countRows(t, "SELECT count(*) AS n FROM usage_events WHERE source = 'chat'")).toBe(1);
    expect(await debits(t, replyId)).toBe(1);

    // Checking again bills nothing more.
    await runDurableObjectAlarm(stub);
    expect(await quota(t)).toEqual(billed);
    expect(await countRows(t, "SELECT count(*) AS n FROM usage_events WHERE source = 'chat'")).toBe(1);
    expect(await debits(t, replyId)).toBe(1);
    s.close();
  });

  it("bills a finished reply once, with its real usage, and keeps no record of it", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    const s = await open(`${conv.url}/connect`, t.owner.token);
    s.send({ type: "message", content: "short", reply: true });
    const done = await s.next("done");
    const usage = done.message.usage!;
    await eventually(async () => expect(await debits(t, done.reply_id)).toBe(1));
    expect(await quota(t)).toEqual({ used: usage.tokens_in + usage.tokens_out, reserved: 0 });
    expect(await countRows(t, "SELECT count(*) AS n FROM usage_events WHERE source_id = ?", done.message.id)).toBe(1);
    expect(await countRows(t, "SELECT count(*) AS n FROM quota_holds")).toBe(0);
    await runInDurableObject(roomOf(t, conv.id), async (_room, state) => {
      expect(state.storage.sql.exec("SELECT count(*) AS n FROM replies").one().n).toBe(0);
    });
    s.close();
  });

  it("deletes messages older than the retention on its alarm", async () => {
    const t = await createTenant();
    const conv = await createConversation(t, { retention_days: 7 });
    for (const content of ["old", "new"]) await call(`${conv.url}/messages`, { token: t.owner.token, body: { content } });
    const stub = roomOf(t, conv.id);
    await runInDurableObject(stub, (_room: ConversationRoom, state) => {
      state.storage.sql.exec("UPDATE messages SET created_at = ? WHERE seq = 1", Date.now() - 8 * 24 * 3600 * 1000);
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const left = await call(`${conv.url}/messages`, { token: t.owner.token });
    expect(left.body.data.map((m: { content: string }) => m.content)).toEqual(["new"]);
    // The next message still gets the next seq: retention never reuses one.
    const next = await call(`${conv.url}/messages`, { token: t.owner.token, body: { content: "newer" } });
    expect(next.body.seq).toBe(3);
  });

  it("deleting the conversation removes the room's log and closes its sockets", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    const s = await open(`${conv.url}/connect`, t.owner.token);
    s.send({ type: "message", content: "soon gone", reply: true });
    await s.next("delta");
    const closed = new Promise<number>((resolve) => s.ws.addEventListener("close", (e) => resolve(e.code)));
    expectStatus(await call(conv.url, { method: "DELETE", token: t.owner.token }), 204);
    expect(await closed).toBe(4404);
    // The model did run: once the reply has wound down its tokens are billed and its reservation settled…
    const usage = await eventually(async () => {
      const body = (await call(`${t.host}/v1/usage`, { token: t.owner.token })).body;
      expect(body.total.calls).toBe(1);
      return body;
    });
    // …without the reply having written into the emptied log (it is billed after it would have).
    expect(await roomOf(t, conv.id).history(0, 100)).toEqual([]);
    const { db_binding } = (await env.CONTROL_DB.prepare("SELECT db_binding FROM tenants WHERE id = ?").bind(t.id).first<{ db_binding: string }>())!;
    const quota = await tenantBinding(env, db_binding)!.prepare("SELECT used, reserved FROM token_quota WHERE tenant_id = ?").bind(t.id).first();
    expect(quota).toEqual({ used: usage.total.tokens_in + usage.total.tokens_out, reserved: 0 });
  });
});
