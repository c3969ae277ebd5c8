import { DurableObject } from "cloudflare:workers";
import { eraseStorage } from "./erase";
import { eq } from "drizzle-orm";
import { touchConversation } from "../src/conversations/store";
import { tenants } from "../src/db/control/schema";
import { controlDb, tenantDb } from "../src/db/router";
import type { Env } from "../src/env";
import { take } from "../src/limits/rate-limit";
import { createLogger, errorFields } from "../src/lib/log";
import { GROUNDING, ground, groundedMessages } from "../src/knowledge/grounding";
import { aiProvider, type ChatMessage } from "../src/providers/ai";
import { estimateTokens } from "../src/providers/ai/types";
import {
  ClientFrame,
  CLOSE_CODES,
  IDENTITY_HEADER,
  MAX_SOCKETS_PER_CREDENTIAL,
  MAX_FRAME_BYTES,
  type FrameErrorCode,
  type Participant,
  type ServerFrame,
  SocketIdentity,
  type SocketMatch,
  SUBPROTOCOL,
  type WireMessage,
} from "./conversation-protocol";
import { MessageLog, type NewMessage } from "./message-log";
import { type BilledConversation, REPLY_CHECK_MS, type ReplyAuthor, ReplyMeter } from "./reply-meter";

/** What the room needs to know about its conversation; set by the Worker on create and update. */
export interface RoomConfig {
  tenantId: string;
  conversationId: string;
  projectId: string;
  dbBinding: string;
  systemPrompt: string | null;
  model: string;
  retentionDays: number | null;
  /** Knowledge bases its replies are grounded in (absent in rooms configured before grounding existed). */
  knowledgeBaseIds?: string[];
  /** The persona version its system prompt begins with, recorded on each reply (absent before personas). */
  persona?: { id: string; version: number } | null;
}

export interface SendOptions {
  clientId?: string;
  reply?: boolean;
  /** Also return the reply as server-sent events. */
  stream?: boolean;
  /** The tenant's monthly token quota, from its plan. */
  monthlyTokens: number;
}

export type SendResult =
  | { ok: true; message: WireMessage; duplicate: boolean; replyId: string | null; events?: ReadableStream<Uint8Array> }
  | { ok: false; code: "QUOTA_EXCEEDED" | "TENANT_SUSPENDED"; detail: string };

export type { SocketMatch };

/** Who posts a message or asks for a reply (and, through an API key, which one: usage names it). */
export type Author = ReplyAuthor;

/** The most tokens a reply may write; reserved against the monthly quota before the model is called. */
const MAX_REPLY_TOKENS = 1024;
/** How much recent history goes into a prompt, in estimated tokens. */
const PROMPT_HISTORY_BUDGET = 3000;
const RETENTION_SWEEP_MS = 60 * 60 * 1000;
/** At most one write of the conversation's row (count, last activity) this often per room. */
const METADATA_WRITE_MS = 500;
const DAY_MS = 24 * 60 * 60 * 1000;

/** What a reply answers (the message, for retrieval) and the quota it is reserved against. */
interface Asked {
  query: string;
  monthlyTokens: number;
}

/** A reply being generated: who asked, its text so far, how to stop it, and who listens besides the sockets. */
interface InFlightReply {
  id: string;
  author: Author;
  text: string;
  controller: AbortController;
  listeners: Set<(frame: ServerFrame) => void>;
}

/**
 * One per (tenant, conversation). Owns the conversation's message log (its own SQLite), its
 * hibernating WebSockets and the assistant replies being streamed. A message is stored before it
 * is broadcast or acknowledged, and `seq` grows by one per stored message.
 */
export class ConversationRoom extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly replies = new Map<string, InFlightReply>();
  private readonly messages: MessageLog;
  private readonly meter: ReplyMeter;
  /** The stored config, read once per instance (an instance starts fresh after hibernation). */
  private cachedConfig: RoomConfig | null | undefined;
  /** The metadata write in flight, and the newest state still to write after it. */
  private metadataWrite: Promise<void> | undefined;
  private metadataPending: { seq: number; at: number } | undefined;
  /** Set once the conversation is deleted: replies still winding down must not write into the emptied log. */
  private destroyed = false;
  private readonly log = createLogger({ component: "ConversationRoom" });

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.createSchema();
    this.messages = new MessageLog(this.sql);
    this.meter = new ReplyMeter(this.sql, env, (fn) => ctx.storage.transactionSync(fn));
    // Answer pings without waking the object from hibernation.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('{"type":"ping"}', '{"type":"pong"}'));
  }

  private createSchema() {
    this.sql.exec(`CREATE TABLE IF NOT EXISTS config (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
  }

  // ---- RPC, called by the Worker --------------------------------------------------------------

  /** Stores (or replaces) the conversation's settings and arms the retention sweep. */
  async configure(config: RoomConfig): Promise<void> {
    this.sql.exec(`INSERT INTO config (key, value) VALUES ('room', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, JSON.stringify(config));
    this.cachedConfig = config;
    await this.armAlarm();
  }

  /**
   * Stores a user message and broadcasts it; with `reply`, reserves the reply's tokens against the
   * monthly quota first (refusing before anything is stored when it is spent) and starts the reply.
   * A retried `clientId` returns the stored message again and starts nothing.
   */
  async send(author: Author, content: string, opts: SendOptions): Promise<SendResult> {
    if (opts.clientId) {
      const existing = this.messages.byClientId(author.userId, opts.clientId);
      if (existing) return { ok: true, message: existing, duplicate: true, replyId: null };
    }
    const config = this.config();
    const replyId = opts.reply && config ? `rpl_${crypto.randomUUID().replaceAll("-", "")}` : null;
    if (replyId && config) {
      // A suspension reaches every cache within seconds; a reply, which costs a model call, asks the control database itself.
      if (await this.tenantSuspended(config)) return { ok: false, code: "TENANT_SUSPENDED", detail: "This tenant is suspended; no reply is started" };
      // With knowledge bases, room for the excerpts the prompt may be grounded in.
      const knowledge = config.knowledgeBaseIds?.length ? GROUNDING.budgetTokens : 0;
      const promptTokens = this.prompt(config).reduce((n, m) => n + estimateTokens(m.content), estimateTokens(content) + knowledge);
      const call = { model: config.model, provider: aiProvider(this.env).name, promptTokens, maxTokens: MAX_REPLY_TOKENS };
      await this.armAlarm(Date.now() + REPLY_CHECK_MS);
      if (!(await this.meter.reserve(config, replyId, author, call, opts.monthlyTokens))) {
        return { ok: false, code: "QUOTA_EXCEEDED", detail: `This month's ${opts.monthlyTokens} tokens would be passed by this reply (about ${promptTokens + MAX_REPLY_TOKENS}); nothing was stored` };
      }
      // The same client_id may have been stored while this one waited for its reservation: then this one is the duplicate.
      const stored = opts.clientId ? this.messages.byClientId(author.userId, opts.clientId) : undefined;
      if (stored) {
        await this.meter.cancel(config, replyId);
        return { ok: true, message: stored, duplicate: true, replyId: null };
      }
    }
    let message: WireMessage;
    try {
      message = this.store({ role: "user", content, authorId: author.userId, clientId: opts.clientId ?? null, status: "complete" });
    } catch (err) {
      if (config && replyId) await this.meter.cancel(config, replyId);
      throw err;
    }
    this.broadcast({ type: "message", message }, (identity) => (identity.user_id === author.userId && opts.clientId ? { client_id: opts.clientId } : {}));
    if (!replyId || !config) return { ok: true, message, duplicate: false, replyId: null };
    const events = this.startReply(replyId, author, config, opts.stream ?? false, { query: content, monthlyTokens: opts.monthlyTokens });
    return { ok: true, message, duplicate: false, replyId, events };
  }

  /**
   * Closes the sockets of a member, of an API key, or every socket (a suspended tenant), with
   * `code`; answers how many it closed. Called when access ends, so it takes effect at once.
   */
  async closeSockets(who: SocketMatch, code: number, reason: string): Promise<number> {
    let closed = 0;
    for (const ws of this.ctx.getWebSockets()) {
      const identity = ws.deserializeAttachment() as SocketIdentity;
      const matches = who.everyone || (who.userId !== undefined && identity.user_id === who.userId) || (who.apiKeyId !== undefined && identity.api_key_id === who.apiKeyId);
      if (!matches) continue;
      ws.close(code, reason);
      closed++;
    }
    if (closed) this.broadcastPresence();
    return closed;
  }

  /**
   * Erases a person from the log: the text of every message they wrote is replaced and its author
   * becomes `tombstone`; answers how many messages. Live sockets of theirs are closed.
   */
  async eraseAuthor(userId: string, tombstone: string): Promise<number> {
    await this.closeSockets({ userId }, CLOSE_CODES.credential, "account erased");
    return this.messages.eraseAuthor(userId, tombstone);
  }

  /** Messages after `after`, oldest first (only `authorId`'s, if given). */
  async history(after: number, limit: number, authorId?: string): Promise<WireMessage[]> {
    return this.messages.after(after, limit, authorId);
  }

  /**
   * Starts an assistant reply to the conversation so far; deltas go to every socket. With
   * `stream`, also returns the reply as server-sent events for the caller.
   */
  private startReply(replyId: string, author: Author, config: RoomConfig, stream: boolean, asked: Asked): ReadableStream<Uint8Array> | undefined {
    const reply: InFlightReply = { id: replyId, author, text: "", controller: new AbortController(), listeners: new Set() };
    this.replies.set(reply.id, reply);
    this.meter.started(reply.id);
    let events: ReadableStream<Uint8Array> | undefined;
    if (stream) {
      const encoder = new TextEncoder();
      let listener: ((frame: ServerFrame) => void) | undefined;
      events = new ReadableStream<Uint8Array>({
        start(controller) {
          listener = (frame) => {
            controller.enqueue(encoder.encode(`event: ${frame.type}\ndata: ${JSON.stringify(frame)}\n\n`));
            if (frame.type === "done" || frame.type === "error") controller.close();
          };
          reply.listeners.add(listener);
        },
        // The caller went away: the reply goes on for the sockets.
        cancel() {
          if (listener) reply.listeners.delete(listener);
        },
      });
    }
    // Not awaited: the reply streams after this call returns; the pending work keeps the object awake.
    this.ctx.waitUntil(this.generate(reply, config, asked));
    return events;
  }

  /**
   * Deletes everything the room stores, for good (the tenant is erased): replies stop, sockets
   * close, and the log stays empty (its tables are made again, empty, for any late call). Answers
   * whether it held anything.
   */
  async erase(): Promise<boolean> {
    this.destroyed = true;
    for (const reply of this.replies.values()) reply.controller.abort();
    for (const ws of this.ctx.getWebSockets()) ws.close(CLOSE_CODES.suspended, "tenant erased");
    this.cachedConfig = null;
    this.metadataPending = undefined;
    const held = await eraseStorage(this.ctx.storage);
    this.createSchema();
    this.messages.createSchema();
    this.meter.createSchema();
    return held;
  }

  /** Deletes the whole log and closes every socket (conversation deleted). */
  async destroy(): Promise<void> {
    this.destroyed = true;
    for (const reply of this.replies.values()) reply.controller.abort();
    for (const ws of this.ctx.getWebSockets()) ws.close(CLOSE_CODES.deleted, "conversation deleted");
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.cachedConfig = null;
    this.metadataPending = undefined;
    // This instance lives on until evicted; give it empty tables rather than none.
    this.createSchema();
    this.messages.createSchema();
    this.meter.createSchema();
  }

  // ---- WebSockets ----------------------------------------------------------------------------

  /** Accepts a WebSocket the Worker has already authenticated; its identity rides in a header. */
  override async fetch(request: Request): Promise<Response> {
    const identity = SocketIdentity.safeParse(JSON.parse(request.headers.get(IDENTITY_HEADER) ?? "null"));
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket" || !identity.success) {
      return new Response("expected an authenticated WebSocket upgrade", { status: 400 });
    }
    const mine = this.ctx.getWebSockets().filter((ws) => credentialOf(ws.deserializeAttachment() as SocketIdentity) === credentialOf(identity.data) && ws.readyState === WebSocket.OPEN);
    if (mine.length >= MAX_SOCKETS_PER_CREDENTIAL) {
      // Each of them closes by its credential's expiry at the latest: an honest upper bound for Retry-After.
      const firstExpiry = Math.min(...mine.map((ws) => (ws.deserializeAttachment() as SocketIdentity).expires_at));
      const retryAfter = Math.max(1, Math.ceil((firstExpiry - Date.now()) / 1000));
      return Response.json({ limit: MAX_SOCKETS_PER_CREDENTIAL, retry_after: retryAfter }, { status: 429 });
    }
    const arriving = !this.participants().some((p) => p.user_id === identity.data.user_id);
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server, [identity.data.user_id]);
    server.serializeAttachment(identity.data);
    const config = this.config();
    this.sendFrame(server, { type: "ready", conversation_id: config?.conversationId ?? "", last_seq: this.messages.lastSeq(), participants: this.participants() });
    // Presence changes when someone arrives or leaves, not with each of their tabs: O(sockets) per arrival, not per socket.
    if (arriving) this.broadcastPresence(server);
    const offered = request.headers.get("sec-websocket-protocol")?.split(",").map((p) => p.trim()) ?? [];
    const headers = offered.includes(SUBPROTOCOL) ? { "Sec-WebSocket-Protocol": SUBPROTOCOL } : undefined;
    return new Response(null, { status: 101, webSocket: client, headers });
  }

  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    if (frameBytes(raw) > MAX_FRAME_BYTES) return this.sendError(ws, "FRAME_TOO_LARGE", `Frames are limited to ${MAX_FRAME_BYTES} bytes`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(typeof raw === "string" ? raw : new TextDecoder().decode(raw));
    } catch {
      return this.sendError(ws, "INVALID_FRAME", "Frames are JSON objects with a type");
    }
    const frame = ClientFrame.safeParse(parsed);
    if (!frame.success) {
      const detail = frame.error.issues.map((i) => `${i.path.join(".") || "(frame)"}: ${i.message}`).join("; ");
      return this.sendError(ws, "INVALID_FRAME", detail);
    }
    // Written by this room when it accepted the socket (from a parsed identity): not parsed again per frame.
    const identity = ws.deserializeAttachment() as SocketIdentity;
    if (this.closeIfExpired(ws, identity)) return;
    try {
      await this.handleFrame(ws, identity, frame.data);
    } catch (err) {
      // Logged whole; the client learns only that it failed, and the socket stays open.
      this.log.error("socket.frame_failed", { ...errorFields(err), type: frame.data.type });
      this.sendError(ws, "INTERNAL_ERROR", "Something went wrong on our side; try again");
    }
  }

  private async handleFrame(ws: WebSocket, identity: SocketIdentity, f: ClientFrame): Promise<void> {
    switch (f.type) {
      case "ping":
        return this.sendFrame(ws, { type: "pong" });
      case "typing":
        return this.broadcast({ type: "typing", user_id: identity.user_id }, undefined, ws);
      case "resume":
        return this.resume(ws, f.after_seq);
      case "cancel": {
        const reply = this.replies.get(f.reply_id);
        if (!reply) return this.sendError(ws, "NOT_FOUND", `No reply ${f.reply_id} is streaming`);
        if (!identity.can_post) return this.sendError(ws, "FORBIDDEN", "Your role may not cancel replies");
        reply.controller.abort();
        return;
      }
      case "message": {
        if (!identity.can_post) return this.sendError(ws, "FORBIDDEN", "Your role may read this conversation but not post to it");
        // A post counts as an HTTP request would: under the key, the member and the tenant.
        for (const limit of identity.rate_limits) {
          const decision = await take(this.env.RATE_LIMITER, limit, (p) => this.ctx.waitUntil(p));
          if (!decision.ok) {
            return this.sendFrame(ws, { type: "error", code: "RATE_LIMITED", message: `Over the ${limit.policy} limit; retry in ${decision.resetSeconds} s`, retry_after: decision.resetSeconds });
          }
        }
        const author = { userId: identity.user_id, apiKeyId: identity.api_key_id };
        const sent = await this.send(author, f.content, { clientId: f.client_id, reply: f.reply, monthlyTokens: identity.monthly_tokens });
        if (!sent.ok && sent.code === "TENANT_SUSPENDED") {
          this.sendError(ws, sent.code, sent.detail);
          await this.closeSockets({ everyone: true }, CLOSE_CODES.suspended, "tenant suspended");
          return;
        }
        if (!sent.ok) return this.sendError(ws, sent.code, sent.detail);
        if (sent.duplicate) this.sendFrame(ws, { type: "message", message: sent.message, ...(f.client_id ? { client_id: f.client_id } : {}) });
        return;
      }
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    ws.close(code === 1005 ? 1000 : code, reason);
    this.presenceAfterLeaving(ws);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.presenceAfterLeaving(ws);
  }

  /** Presence goes out only when the one leaving was a participant's last socket. */
  private presenceAfterLeaving(ws: WebSocket) {
    const identity = ws.deserializeAttachment() as SocketIdentity | null;
    const participants = this.participants(ws);
    if (!identity || !participants.some((p) => p.user_id === identity.user_id)) this.broadcast({ type: "presence", participants }, undefined, ws);
  }

  private broadcastPresence(except?: WebSocket) {
    this.broadcast({ type: "presence", participants: this.participants() }, undefined, except);
  }

  /**
   * Bills the replies an earlier instance left unbilled (it was evicted mid-reply), deletes messages
   * older than the conversation's retention, and arms the next check.
   */
  override async alarm(): Promise<void> {
    const config = this.config();
    if (config) {
      for (const orphan of this.meter.orphans()) {
        const fields = { tenant_id: config.tenantId, conversation_id: config.conversationId, reply_id: orphan.id, state: orphan.state };
        try {
          await this.meter.recover(config, orphan, (text) => {
            const message = this.store({ role: "assistant", content: text, authorId: null, clientId: null, status: "failed", error: "interrupted" });
            this.broadcast({ type: "message", message });
            return message.id;
          });
          this.log.warn("reply.recovered", fields);
        } catch (err) {
          // One bill that cannot be finished now must not keep the others, or retention, waiting: the next check tries again.
          this.log.error("reply.recovery_failed", { ...errorFields(err), ...fields });
        }
      }
    }
    if (config?.retentionDays) {
      const cutoff = Date.now() - config.retentionDays * DAY_MS;
      const deleted = this.messages.deleteBefore(cutoff);
      if (deleted) this.log.info("retention.swept", { tenant_id: config.tenantId, conversation_id: config.conversationId, deleted });
    }
    await this.armAlarm();
  }

  /**
   * Sets the alarm to the earliest of: `at`, the next retention sweep (if the conversation has a
   * retention) and the next reply check (while a reply is recorded); deletes it when none is due.
   */
  private async armAlarm(at?: number) {
    const now = Date.now();
    const due = [at, this.config()?.retentionDays ? now + RETENTION_SWEEP_MS : undefined, this.meter.any() ? now + REPLY_CHECK_MS : undefined].filter((t) => t !== undefined);
    const current = await this.ctx.storage.getAlarm();
    if (!due.length) {
      if (current !== null) await this.ctx.storage.deleteAlarm();
      return;
    }
    const next = Math.min(...due);
    if (current === null || current > next || at === undefined) await this.ctx.storage.setAlarm(next);
  }

  // ---- internals -----------------------------------------------------------------------------

  private tenantDb(config: RoomConfig) {
    return tenantDb(this.env, { id: config.tenantId, dbBinding: config.dbBinding });
  }

  private config(): RoomConfig | null {
    if (this.cachedConfig === undefined) {
      const row = this.sql.exec<{ value: string }>(`SELECT value FROM config WHERE key = 'room'`).toArray()[0];
      this.cachedConfig = row ? (JSON.parse(row.value) as RoomConfig) : null;
    }
    return this.cachedConfig;
  }

  private async tenantSuspended(config: RoomConfig): Promise<boolean> {
    const row = await controlDb(this.env).select({ status: tenants.status }).from(tenants).where(eq(tenants.id, config.tenantId)).get();
    return row?.status !== "active";
  }

  /** Stores a message in the log, and schedules the conversation's row to follow. */
  private store(m: NewMessage): WireMessage {
    const { message, seq, at } = this.messages.append(m);
    this.touchMetadata(seq, at);
    return message;
  }

  /**
   * Keeps the conversation's row in the tenant's D1 current (message count, last activity), off
   * the message path: the first message's write goes at once, then at most one write every
   * METADATA_WRITE_MS, each carrying every message since — a busy room is not a D1 write per
   * message. (The log is the truth; the row is a summary for lists, and GET …/messages answers
   * last_seq from the log.)
   */
  private touchMetadata(seq: number, at: number) {
    this.metadataPending = { seq, at };
    if (!this.metadataWrite) {
      this.metadataWrite = this.flushMetadata().finally(() => (this.metadataWrite = undefined));
      this.ctx.waitUntil(this.metadataWrite);
    }
  }

  private async flushMetadata(): Promise<void> {
    while (this.metadataPending) {
      const { seq, at } = this.metadataPending;
      this.metadataPending = undefined;
      const config = this.config();
      if (!config) return;
      try {
        await touchConversation(this.tenantDb(config), config, seq, new Date(at)).run();
      } catch (err) {
        this.log.error("conversation.metadata_failed", { ...errorFields(err), conversation_id: config.conversationId });
      }
      await new Promise((r) => setTimeout(r, METADATA_WRITE_MS));
    }
  }

  /**
   * Calls the model and streams its reply to everyone, stores it, then bills it. The model ran
   * either way: its tokens are billed even if the conversation was deleted meanwhile.
   */
  private async generate(reply: InFlightReply, config: RoomConfig, asked: Asked): Promise<void> {
    const billed: BilledConversation = config;
    const emit = (frame: ServerFrame) => {
      this.broadcast(frame);
      for (const listener of reply.listeners) {
        try {
          listener(frame);
        } catch {
          // A listener whose stream broke is dropped; it must not fail the reply for everyone else.
          reply.listeners.delete(listener);
        }
      }
    };
    let bill: ReturnType<ReplyMeter["ended"]>;
    try {
      const grounding = await this.ground(reply, config, asked);
      const prompt = grounding ? groundedMessages(this.prompt(config), grounding.instructions) : this.prompt(config);
      const result = await aiProvider(this.env).chat(
        { model: config.model, messages: prompt, maxTokens: MAX_REPLY_TOKENS, signal: reply.controller.signal },
        (text) => {
          reply.text += text;
          if (!this.destroyed) this.meter.progress(reply.id, reply.text);
          emit({ type: "delta", reply_id: reply.id, text });
        },
      );
      const usage = { model: result.model, provider: result.provider, tokensIn: result.usage.inputTokens, tokensOut: result.usage.outputTokens };
      if (this.destroyed) {
        bill = this.meter.ended(reply, usage, null);
      } else {
        const canceled = reply.controller.signal.aborted;
        // The message and the bill's record change together: an eviction between them cannot bill the reply as interrupted.
        const message = this.ctx.storage.transactionSync(() => {
          const m = this.store({ role: "assistant", content: result.text, authorId: null, clientId: null, status: canceled ? "canceled" : "complete", result, citations: grounding?.citations, persona: config.persona ?? null });
          bill = this.meter.ended(reply, usage, m.id);
          return m;
        });
        emit({ type: "done", reply_id: reply.id, message, ...(grounding && { citations: grounding.citations }) });
      }
    } catch (err) {
      bill = this.meter.ended(reply, null, null);
      if (!this.destroyed) {
        this.log.error("reply.failed", { ...errorFields(err), conversation_id: config.conversationId, requested_by: reply.author.userId });
        // The failed marker is a stored message like any other, so seq stays gap-free for every client.
        const message = this.store({ role: "assistant", content: reply.text, authorId: null, clientId: null, status: "failed", error: "provider_error" });
        emit({ type: "error", code: "PROVIDER_ERROR", message: "The model failed to answer; the partial reply is stored as failed", reply_id: reply.id });
        this.broadcast({ type: "message", message });
      }
    } finally {
      this.replies.delete(reply.id);
    }
    try {
      await this.meter.bill(billed, bill!);
    } catch (err) {
      // The record stays; the room's next check bills it.
      this.meter.unfinished(reply.id);
      this.log.error("reply.billing_failed", { ...errorFields(err), conversation_id: config.conversationId, reply_id: reply.id });
    }
  }

  /**
   * Retrieves knowledge for the message being answered from the conversation's bases; the query's
   * embedding is metered under the reply's own reference. A failed retrieval leaves the reply
   * ungrounded rather than failing it.
   */
  private async ground(reply: InFlightReply, config: RoomConfig, asked: Asked) {
    if (!config.knowledgeBaseIds?.length) return null;
    try {
      return await ground(
        {
          env: this.env,
          db: this.tenantDb(config),
          tenantId: config.tenantId,
          monthlyTokens: asked.monthlyTokens,
          userId: reply.author.userId,
          apiKeyId: reply.author.apiKeyId ?? null,
          reference: `${reply.id}.retrieval`,
          sourceId: config.conversationId,
          waitUntil: (promise) => this.ctx.waitUntil(promise),
          log: this.log,
        },
        config.knowledgeBaseIds,
        asked.query,
      );
    } catch (err) {
      this.log.warn("reply.retrieval_failed", { ...errorFields(err), conversation_id: config.conversationId, reply_id: reply.id });
      return null;
    }
  }

  /** The system prompt, then as much recent complete history as fits the budget, oldest first. */
  private prompt(config: RoomConfig): ChatMessage[] {
    const history = this.messages.recent(PROMPT_HISTORY_BUDGET);
    return config.systemPrompt ? [{ role: "system", content: config.systemPrompt }, ...history] : history;
  }

  /** Sends what a reconnecting client missed, then the text so far of every reply still streaming. */
  private resume(ws: WebSocket, afterSeq: number) {
    for (const message of this.messages.after(afterSeq)) this.sendFrame(ws, { type: "message", message });
    for (const reply of this.replies.values()) {
      if (reply.text) this.sendFrame(ws, { type: "delta", reply_id: reply.id, text: reply.text });
    }
  }

  private participants(leaving?: WebSocket): Participant[] {
    const byUser = new Map<string, Participant>();
    for (const ws of this.ctx.getWebSockets()) {
      if (ws === leaving || ws.readyState !== WebSocket.OPEN) continue;
      const identity = ws.deserializeAttachment() as SocketIdentity;
      const p = byUser.get(identity.user_id) ?? { user_id: identity.user_id, role: identity.role, connections: 0 };
      p.connections++;
      byUser.set(identity.user_id, p);
    }
    return [...byUser.values()];
  }

  private sendFrame(ws: WebSocket, frame: ServerFrame) {
    try {
      ws.send(JSON.stringify(frame));
    } catch {
      // The socket closed between listing and sending; its close handler updates presence.
    }
  }

  private sendError(ws: WebSocket, code: FrameErrorCode, message: string) {
    this.sendFrame(ws, { type: "error", code, message });
  }

  /**
   * A socket outlives the credential that opened it; once that credential would have expired, the
   * socket is closed (4401) so a removed or demoted member cannot keep listening. Clients reconnect
   * with a fresh token and resume.
   */
  private closeIfExpired(ws: WebSocket, identity: SocketIdentity): boolean {
    if (identity.expires_at > Date.now()) return false;
    ws.close(CLOSE_CODES.credential, "credential expired; reconnect with a fresh token and resume");
    return true;
  }

  /** Sends a frame to every open socket (but `except`), with per-socket extra fields. */
  private broadcast(frame: ServerFrame, extra?: (identity: SocketIdentity) => Record<string, unknown>, except?: WebSocket) {
    const shared = extra ? undefined : JSON.stringify(frame);
    for (const ws of this.ctx.getWebSockets()) {
      if (ws === except) continue;
      const identity = ws.deserializeAttachment() as SocketIdentity;
      if (this.closeIfExpired(ws, identity)) continue;
      try {
        ws.send(shared ?? JSON.stringify({ ...frame, ...extra!(identity) }));
      } catch {
        // Closed meanwhile.
      }
    }
  }
}

const encoder = new TextEncoder();

/** A frame's size in bytes; a string short enough that even 3 bytes a character would fit is not encoded to find out. */
function frameBytes(raw: string | ArrayBuffer): number {
  if (typeof raw !== "string") return raw.byteLength;
  return raw.length * 3 <= MAX_FRAME_BYTES ? raw.length : encoder.encode(raw).byteLength;
}

/** The credential a socket was opened with: its API key, or its member's access tokens as one. */
function credentialOf(identity: SocketIdentity): string {
  return identity.api_key_id ?? `user:${identity.user_id}`;
}
