import { type CallRef, debit, recordedCost, release, reserve, settle } from "../src/billing/metering";
import { controlDb, tenantDb } from "../src/db/router";
import type { Env } from "../src/env";
import { estimateTokens } from "../src/providers/ai/types";

/** Where a reply's bill stands; kept in the room's own SQLite so it survives the room's eviction. */
type ReplyState = "reserving" | "streaming" | "ended";

interface ReplyRow extends Record<string, SqlStorageValue> {
  id: string;
  state: ReplyState;
  author_id: string;
  api_key_id: string | null;
  prompt_tokens: number;
  text: string;
  model: string;
  provider: string | null;
  tokens_in: number | null;
  tokens_out: number | null;
  message_id: string | null;
  started_at: number;
}

/** What a reply used, from the provider's answer. */
export interface ReplyUsage {
  model: string;
  provider: string;
  tokensIn: number;
  tokensOut: number;
}

/** What an ended reply is billed for. */
type ReplyBill = Pick<ReplyRow, "id" | "author_id" | "api_key_id" | "model" | "message_id"> & { provider: string; tokens_in: number; tokens_out: number };

/** The conversation a reply belongs to, as billing needs it (captured when the reply starts: a deleted conversation's reply is still billed). */
export interface BilledConversation {
  tenantId: string;
  dbBinding: string;
  projectId: string;
}

/** Who asked for the reply (and through which API key: usage names it). */
export interface ReplyAuthor {
  userId: string;
  apiKeyId?: string;
}

/** How often a room looks for replies its earlier instance left unbilled (it may have been evicted mid-reply). */
export const REPLY_CHECK_MS = 10 * 60 * 1000;
/** How often the streamed text so far is written down, for billing a reply cut off by eviction. */
const PROGRESS_EVERY_MS = 250;

/**
 * The bill of each assistant reply a room generates, through the one metering path: reserve before
 * the model is called, settle (or release) and debit after, all under the reply's id. The reply is
 * recorded in the room's SQLite before anything is reserved and forgotten only once it is billed,
 * so a room evicted mid-reply leaves a record its next instance finishes: the text streamed so far
 * is billed as an interrupted reply, once.
 */
export class ReplyMeter {
  private readonly lastProgress = new Map<string, number>();
  /** Replies this instance recorded and is still making or billing: every other record is an orphan. */
  private readonly mine = new Set<string>();

  /** `transactionSync` of the room's storage: what must change together with a bill's record. */
  constructor(
    private readonly sql: SqlStorage,
    private readonly env: Env,
    private readonly atomically: <T>(fn: () => T) => T,
  ) {
    this.createSchema();
  }

  /** The room's table of replies not yet billed (again after the room's storage is wiped). */
  createSchema() {
    this.sql.exec(`CREATE TABLE IF NOT EXISTS replies (
      id TEXT PRIMARY KEY, state TEXT NOT NULL, author_id TEXT NOT NULL, api_key_id TEXT,
      prompt_tokens INTEGER NOT NULL, text TEXT NOT NULL DEFAULT '', model TEXT NOT NULL, provider TEXT,
      tokens_in INTEGER, tokens_out INTEGER, message_id TEXT, started_at INTEGER NOT NULL)`);
  }

  /**
   * Records the reply, then reserves its prompt and `maxTokens` of the month's quota for it;
   * false (nothing kept) when that would pass `monthlyTokens`.
   */
  async reserve(c: BilledConversation, replyId: string, author: ReplyAuthor, call: { model: string; provider: string; promptTokens: number; maxTokens: number }, monthlyTokens: number): Promise<boolean> {
    const { model, provider, promptTokens, maxTokens } = call;
    this.mine.add(replyId);
    this.sql.exec(
      `INSERT INTO replies (id, state, author_id, api_key_id, prompt_tokens, model, provider, started_at) VALUES (?, 'reserving', ?, ?, ?, ?, ?, ?)`,
      replyId,
      author.userId,
      author.apiKeyId ?? null,
      promptTokens,
      model,
      provider,
      Date.now(),
    );
    const db = this.db(c);
    let reserved: unknown[];
    try {
      [, reserved] = await db.batch(reserve(db, this.ref(c, replyId), promptTokens + maxTokens, monthlyTokens));
    } catch (err) {
      // Whether the hold landed is unknown: the record stays for the next check, which gives back whatever was held.
      this.unfinished(replyId);
      throw err;
    }
    if (reserved.length) return true;
    this.forget(replyId);
    return false;
  }

  /** The reply will not run after all (its request turned out a duplicate, or storing it failed): the hold is given back. */
  async cancel(c: BilledConversation, replyId: string): Promise<void> {
    const db = this.db(c);
    try {
      await db.batch(release(db, this.ref(c, replyId)));
    } catch (err) {
      // The record stays for the next check, which gives the hold back.
      this.unfinished(replyId);
      throw err;
    }
    this.forget(replyId);
  }

  /** The model is being called. */
  started(replyId: string) {
    this.sql.exec(`UPDATE replies SET state = 'streaming' WHERE id = ?`, replyId);
  }

  /** The text so far, written down now and then (not per delta: each write holds the room's output until stored). */
  progress(replyId: string, text: string) {
    const now = Date.now();
    if (now - (this.lastProgress.get(replyId) ?? 0) < PROGRESS_EVERY_MS) return;
    this.lastProgress.set(replyId, now);
    this.sql.exec(`UPDATE replies SET text = ? WHERE id = ? AND state = 'streaming'`, text, replyId);
  }

  /**
   * The call ended: what it used (nothing, when it failed) and the message that stores it. The
   * record now says exactly what to bill; returns that bill, for `bill`.
   */
  ended(reply: { id: string; author: ReplyAuthor }, usage: ReplyUsage | null, messageId: string | null): ReplyBill {
    this.lastProgress.delete(reply.id);
    const bill: ReplyBill = {
      id: reply.id,
      author_id: reply.author.userId,
      api_key_id: reply.author.apiKeyId ?? null,
      model: usage?.model ?? "",
      provider: usage?.provider ?? "",
      tokens_in: usage?.tokensIn ?? 0,
      tokens_out: usage?.tokensOut ?? 0,
      message_id: messageId,
    };
    this.sql.exec(
      `UPDATE replies SET state = 'ended', model = ?, provider = ?, tokens_in = ?, tokens_out = ?, message_id = ? WHERE id = ?`,
      bill.model,
      bill.provider,
      bill.tokens_in,
      bill.tokens_out,
      messageId,
      reply.id,
    );
    return bill;
  }

  /**
   * Bills an ended reply: settles it (or releases its hold when it used nothing) and debits its
   * cost, then forgets it. Safe to repeat: a second settle finds no hold, and the debit is refused
   * by reference, so a bill interrupted anywhere is finished by the next check.
   */
  async bill(c: BilledConversation, bill: ReplyBill): Promise<void> {
    const db = this.db(c);
    const ref = this.ref(c, bill.id);
    if (bill.tokens_in + bill.tokens_out === 0) {
      await db.batch(release(db, ref));
    } else {
      const call = {
        tenantId: c.tenantId,
        userId: bill.author_id,
        apiKeyId: bill.api_key_id,
        projectId: c.projectId,
        source: "chat" as const,
        sourceId: bill.message_id ?? bill.id,
        model: bill.model,
        provider: bill.provider,
        tokensIn: bill.tokens_in,
        tokensOut: bill.tokens_out,
      };
      await db.batch(settle(db, ref, call).statements);
      // What was recorded, this time or an earlier one: that is what is owed.
      const cost = await recordedCost(db, ref);
      if (cost !== null) await debit(controlDb(this.env), ref, cost, `chat reply (${bill.model})`);
    }
    this.forget(bill.id);
  }

  /**
   * Replies recorded but not being made or billed by this instance: an earlier instance was
   * evicted mid-reply, or this one's bill failed (`unfinished`). A reply still reserving or
   * streaming here is never one of them.
   */
  orphans(): ReplyRow[] {
    return this.sql
      .exec<ReplyRow>(`SELECT * FROM replies ORDER BY started_at`)
      .toArray()
      .filter((r) => !this.mine.has(r.id));
  }

  /** Billing the reply failed here: its record is left for the room's next check to finish. */
  unfinished(replyId: string) {
    this.mine.delete(replyId);
  }

  /**
   * Finishes an orphan: one still reserving is released; one cut off while streaming is ended with
   * what it had streamed (the prompt and the text so far, as the local estimate counts them), and
   * `interrupted` stores that text as a message; then it is billed.
   */
  async recover(c: BilledConversation, row: ReplyRow, interrupted: (text: string) => string | null): Promise<void> {
    if (row.state === "reserving") return this.cancel(c, row.id);
    const author = { userId: row.author_id, apiKeyId: row.api_key_id ?? undefined };
    const usage = { model: row.model, provider: row.provider ?? "unknown", tokensIn: row.prompt_tokens, tokensOut: estimateTokens(row.text) };
    // The interrupted message and the ended record together: a check cut off between them would store the message twice.
    const bill =
      row.state === "streaming"
        ? this.atomically(() => this.ended({ id: row.id, author }, usage, interrupted(row.text)))
        : { ...row, tokens_in: row.tokens_in ?? 0, tokens_out: row.tokens_out ?? 0, provider: row.provider ?? "" };
    await this.bill(c, bill);
  }

  /** Whether any reply is recorded (the room keeps a check armed while one is). */
  any(): boolean {
    return this.sql.exec(`SELECT 1 FROM replies LIMIT 1`).toArray().length > 0;
  }

  private forget(replyId: string) {
    this.mine.delete(replyId);
    this.lastProgress.delete(replyId);
    this.sql.exec(`DELETE FROM replies WHERE id = ?`, replyId);
  }

  private ref(c: BilledConversation, replyId: string): CallRef {
    return { tenantId: c.tenantId, reference: replyId };
  }

  private db(c: BilledConversation) {
    return tenantDb(this.env, { id: c.tenantId, dbBinding: c.dbBinding });
  }
}
