import { DurableObject } from "cloudflare:workers";
import { moveCredit } from "../src/db/credits";
import { controlDb, tenantDatabase, tenantDb } from "../src/db/router";
import { releaseTokens, reserveTokens, type Reservation, settleTokens } from "../src/db/quota";
import { recordUsage } from "../src/db/usage";
import type { Env } from "../src/env";
import { newId } from "../src/lib/ids";
import { take } from "../src/limits/rate-limit";
import { createLogger, errorFields } from "../src/lib/log";
import { aiProvider, type ChatMessage, type ChatResult } from "../src/providers/ai";
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

/** What the room needs to know about its conversation; set by the Worker on create and update. */
export interface RoomConfig {
  tenantId: string;
  conversationId: string;
  projectId: string;
  dbBinding: string;
  systemPrompt: string | null;
  model: string;
  retentionDays: number | null;
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
export interface Author {
  userId: string;
  apiKeyId?: string;
}

/** The most tokens a reply may write; reserved against the monthly quota before the model is called. */
const MAX_REPLY_TOKENS = 1024;
/** How much recent history goes into a prompt, in estimated tokens. */
const PROMPT_HISTORY_BUDGET = 3000;
const RETENTION_SWEEP_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

interface MessageRow extends Record<string, SqlStorageValue> {
  seq: number;
  id: string;
  role: "user" | "assistant";
  content: string;
  author_id: string | null;
  client_id: string | null;
  status: "complete" | "failed" | "canceled";
  model: string | null;
  provider: string | null;
  tokens_in: number | null;
  tokens_out: number | null;
  error: string | null;
  created_at: number;
}

/** A reply being generated: its text so far, how to stop it, and who listens besides the sockets. */
interface InFlightReply {
  id: string;
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
    // Answer pings without waking the object from hibernation.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('{"type":"ping"}', '{"type":"pong"}'));
  }

  private createSchema() {
    this.sql.exec(`CREATE TABLE IF NOT EXISTS config (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS messages (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE,
      role TEXT NOT NULL,
      content TEXT NOT NULL,
      author_id TEXT,
      client_id TEXT,
      status TEXT NOT NULL,
      model TEXT, provider TEXT, tokens_in INTEGER, tokens_out INTEGER, error TEXT,
      created_at INTEGER NOT NULL)`);
    this.sql.exec(`CREATE UNIQUE INDEX IF NOT EXISTS messages_client_id ON messages (author_id, client_id) WHERE client_id IS NOT NULL`);
    this.sql.exec(`CREATE INDEX IF NOT EXISTS messages_created_at ON messages (created_at)`);
  }

  // ---- RPC, called by the Worker --------------------------------------------------------------

  /** Stores (or replaces) the conversation's settings and arms the retention sweep. */
  async configure(config: RoomConfig): Promise<void> {
    this.sql.exec(`INSERT INTO config (key, value) VALUES ('room', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, JSON.stringify(config));
    this.cachedConfig = config;
    if (config.retentionDays) {
      const current = await this.ctx.storage.getAlarm();
      if (current === null) await this.ctx.storage.setAlarm(Date.now() + RETENTION_SWEEP_MS);
    } else {
      await this.ctx.storage.deleteAlarm();
    }
  }

  /**
   * Stores a user message and broadcasts it; with `reply`, reserves the reply's tokens against the
   * monthly quota first (refusing before anything is stored when it is spent) and starts the reply.
   * A retried `clientId` returns the stored message again and starts nothing.
   */
  async send(author: Author, content: string, opts: SendOptions): Promise<SendResult> {
    if (opts.clientId) {
      const existing = this.byClientId(author.userId, opts.clientId);
      if (existing) return { ok: true, message: toWire(existing), duplicate: true, replyId: null };
    }
    const config = this.config();
    let reservation: Reservation | null = null;
    if (opts.reply && config) {
      // A suspension reaches every cache within seconds; a reply, which costs a model call, asks the control database itself.
      if (await this.tenantSuspended(config)) return { ok: false, code: "TENANT_SUSPENDED", detail: "This tenant is suspended; no reply is started" };
      const estimate = this.prompt(config).reduce((n, m) => n + estimateTokens(m.content), estimateTokens(content)) + MAX_REPLY_TOKENS;
      reservation = await reserveTokens(this.tenantDb(config), config.tenantId, estimate, opts.monthlyTokens);
      if (!reservation) {
        return { ok: false, code: "QUOTA_EXCEEDED", detail: `This month's ${opts.monthlyTokens} tokens would be passed by this reply (about ${estimate}); nothing was stored` };
      }
      // The same client_id may have been stored while this one waited for its reservation: then this one is the duplicate.
      const stored = opts.clientId ? this.byClientId(author.userId, opts.clientId) : undefined;
      if (stored) {
        await releaseTokens(this.tenantDb(config), reservation);
        return { ok: true, message: toWire(stored), duplicate: true, replyId: null };
      }
    }
    let message: WireMessage;
    try {
      message = this.store({ role: "user", content, authorId: author.userId, clientId: opts.clientId ?? null, status: "complete" });
    } catch (err) {
      if (config && reservation) await releaseTokens(this.tenantDb(config), reservation);
      throw err;
    }
    this.broadcast({ type: "message", message }, (identity) => (identity.user_id === author.userId && opts.clientId ? { client_id: opts.clientId } : {}));
    if (!opts.reply) return { ok: true, message, duplicate: false, replyId: null };
    const { replyId, events } = this.startReply(author, reservation, opts.stream ?? false);
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

  /** Messages after `after`, oldest first. */
  async history(after: number, limit: number): Promise<WireMessage[]> {
    return this.sql.exec<MessageRow>(`SELECT * FROM messages WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit).toArray().map(toWire);
  }

  /**
   * Starts an assistant reply to the conversation so far; deltas go to every socket. With
   * `stream`, also returns the reply as server-sent events for the caller.
   */
  private startReply(requestedBy: Author, reservation: Reservation | null, stream: boolean): { replyId: string; events?: ReadableStream<Uint8Array> } {
    const reply: InFlightReply = { id: `rpl_${crypto.randomUUID().replaceAll("-", "")}`, text: "", controller: new AbortController(), listeners: new Set() };
    this.replies.set(reply.id, reply);
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
    this.ctx.waitUntil(this.generate(reply, requestedBy, reservation));
    return { replyId: reply.id, events };
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
    this.sendFrame(server, { type: "ready", conversation_id: config?.conversationId ?? "", last_seq: this.lastSeq(), participants: this.participants() });
    // Presence changes when someone arrives or leaves, not with each of their tabs: O(sockets) per arrival, not per socket.
    if (arriving) this.broadcastPresence(server);
    const offered = request.headers.get("sec-websocket-protocol")?.split(",").map((p) => p.trim()) ?? [];
    const headers = offered.includes(SUBPROTOCOL) ? { "Sec-WebSocket-Protocol": SUBPROTOCOL } : undefined;
    return new Response(null, { status: 101, webSocket: client, headers });
  }

  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    const size = typeof raw === "string" ? new TextEncoder().encode(raw).byteLength : raw.byteLength;
    if (size > MAX_FRAME_BYTES) return this.sendError(ws, "FRAME_TOO_LARGE", `Frames are limited to ${MAX_FRAME_BYTES} bytes`);
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
    const identity = SocketIdentity.parse(ws.deserializeAttachment());
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

  /** Retention: deletes messages older than the conversation's retention, then sweeps again later. */
  override async alarm(): Promise<void> {
    const config = this.config();
    if (!config?.retentionDays) return;
    const cutoff = Date.now() - config.retentionDays * DAY_MS;
    const deleted = this.sql.exec(`DELETE FROM messages WHERE created_at < ?`, cutoff).rowsWritten;
    if (deleted) this.log.info("retention.swept", { tenant_id: config.tenantId, conversation_id: config.conversationId, deleted });
    await this.ctx.storage.setAlarm(Date.now() + RETENTION_SWEEP_MS);
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

  private byClientId(authorId: string, clientId: string): MessageRow | undefined {
    return this.sql.exec<MessageRow>(`SELECT * FROM messages WHERE author_id = ? AND client_id = ?`, authorId, clientId).toArray()[0];
  }

  private async tenantSuspended(config: RoomConfig): Promise<boolean> {
    const row = await this.env.CONTROL_DB.prepare(`SELECT status FROM tenants WHERE id = ?`).bind(config.tenantId).first<{ status: string }>();
    return row?.status !== "active";
  }

  private lastSeq(): number {
    const row = this.sql.exec<{ seq: number }>(`SELECT seq FROM sqlite_sequence WHERE name = 'messages'`).toArray()[0];
    return row?.seq ?? 0;
  }

  private store(m: {
    role: "user" | "assistant";
    content: string;
    authorId: string | null;
    clientId: string | null;
    status: WireMessage["status"];
    result?: Pick<ChatResult, "model" | "provider" | "usage">;
    error?: string;
  }): WireMessage {
    const row = this.sql
      .exec<MessageRow>(
        `INSERT INTO messages (id, role, content, author_id, client_id, status, model, provider, tokens_in, tokens_out, error, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
        newId("msg"),
        m.role,
        m.content,
        m.authorId,
        m.clientId,
        m.status,
        m.result?.model ?? null,
        m.result?.provider ?? null,
        m.result?.usage.inputTokens ?? null,
        m.result?.usage.outputTokens ?? null,
        m.error ?? null,
        Date.now(),
      )
      .one();
    this.touchMetadata(row.seq, row.created_at);
    return toWire(row);
  }

  /**
   * Keeps the conversation's row in the tenant's D1 current (message count, last activity), off
   * the message path. One write at a time per room: messages arriving meanwhile fold into the
   * next write, so a busy room does not turn every message into a D1 write.
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
        await tenantDatabase(this.env, { id: config.tenantId, dbBinding: config.dbBinding })
          .prepare(
            `UPDATE conversations SET message_count = MAX(message_count, ?), last_activity_at = MAX(COALESCE(last_activity_at, ''), ?)
             WHERE id = ? AND tenant_id = ?`,
          )
          .bind(seq, new Date(at).toISOString(), config.conversationId, config.tenantId)
          .run();
      } catch (err) {
        this.log.error("conversation.metadata_failed", { ...errorFields(err), conversation_id: config.conversationId });
      }
    }
  }

  private async generate(reply: InFlightReply, requestedBy: Author, reservation: Reservation | null): Promise<void> {
    const config = this.config();
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
    try {
      const result = await aiProvider(this.env).chat(
        { model: config?.model ?? "", messages: this.prompt(config), maxTokens: MAX_REPLY_TOKENS, signal: reply.controller.signal },
        (text) => {
          reply.text += text;
          emit({ type: "delta", reply_id: reply.id, text });
        },
      );
      // The model ran either way: its tokens are settled and billed even if the conversation was deleted meanwhile.
      let reference = reply.id;
      if (!this.destroyed) {
        const canceled = reply.controller.signal.aborted;
        const message = this.store({ role: "assistant", content: result.text, authorId: null, clientId: null, status: canceled ? "canceled" : "complete", result });
        emit({ type: "done", reply_id: reply.id, message });
        reference = message.id;
      }
      if (config) this.ctx.waitUntil(this.meter(config, requestedBy, reference, result, reservation));
    } catch (err) {
      if (config && reservation) this.ctx.waitUntil(releaseTokens(this.tenantDb(config), reservation).catch(() => {}));
      if (this.destroyed) return;
      this.log.error("reply.failed", { ...errorFields(err), conversation_id: config?.conversationId, requested_by: requestedBy.userId });
      // The failed marker is a stored message like any other, so seq stays gap-free for every client.
      const message = this.store({ role: "assistant", content: reply.text, authorId: null, clientId: null, status: "failed", error: "provider_error" });
      emit({ type: "error", code: "PROVIDER_ERROR", message: "The model failed to answer; the partial reply is stored as failed", reply_id: reply.id });
      this.broadcast({ type: "message", message });
    } finally {
      this.replies.delete(reply.id);
    }
  }

  /** Records a reply's model call in the tenant's usage (after the reply has reached everyone). */
  /** `reference` is the stored message, or the reply id when the conversation was deleted before it could be stored. */
  private async meter(config: RoomConfig, requestedBy: Author, reference: string, result: ChatResult, reservation: Reservation | null): Promise<void> {
    try {
      if (reservation) await settleTokens(this.tenantDb(config), reservation, result.usage.inputTokens + result.usage.outputTokens);
      const cost = await recordUsage(this.tenantDb(config), {
        tenantId: config.tenantId,
        userId: requestedBy.userId,
        apiKeyId: requestedBy.apiKeyId ?? null,
        projectId: config.projectId,
        source: "chat",
        sourceId: reference,
        model: result.model,
        provider: result.provider,
        tokensIn: result.usage.inputTokens,
        tokensOut: result.usage.outputTokens,
      });
      await moveCredit(controlDb(this.env), { tenantId: config.tenantId, amountMicros: 0 - cost, kind: "debit", reason: `chat reply (${result.model})`, reference });
    } catch (err) {
      this.log.error("usage.record_failed", { ...errorFields(err), conversation_id: config.conversationId, reference });
    }
  }

  /** The system prompt, then as much recent complete history as fits the budget, oldest first. */
  private prompt(config: RoomConfig | null): ChatMessage[] {
    const recent = this.sql
      .exec<MessageRow>(`SELECT role, content FROM messages WHERE status = 'complete' ORDER BY seq DESC LIMIT 200`)
      .toArray();
    const history: ChatMessage[] = [];
    let budget = PROMPT_HISTORY_BUDGET;
    for (const m of recent) {
      budget -= estimateTokens(m.content);
      if (budget < 0 && history.length) break;
      history.unshift({ role: m.role, content: m.content });
    }
    return config?.systemPrompt ? [{ role: "system", content: config.systemPrompt }, ...history] : history;
  }

  /** Sends what a reconnecting client missed, then the text so far of every reply still streaming. */
  private resume(ws: WebSocket, afterSeq: number) {
    const missed = this.sql.exec<MessageRow>(`SELECT * FROM messages WHERE seq > ? ORDER BY seq`, afterSeq).toArray();
    for (const row of missed) this.sendFrame(ws, { type: "message", message: toWire(row) });
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

/** The credential a socket was opened with: its API key, or its member's access tokens as one. */
function credentialOf(identity: SocketIdentity): string {
  return identity.api_key_id ?? `user:${identity.user_id}`;
}

function toWire(row: MessageRow): WireMessage {
  return {
    id: row.id,
    seq: row.seq,
    role: row.role,
    content: row.content,
    author_id: row.author_id,
    status: row.status,
    created_at: new Date(row.created_at).toISOString(),
    usage: row.model && row.provider ? { model: row.model, provider: row.provider, tokens_in: row.tokens_in ?? 0, tokens_out: row.tokens_out ?? 0 } : null,
    error: row.error,
  };
}
