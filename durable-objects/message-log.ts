import type { ChatMessage, ChatResult } from "../src/providers/ai";
import { estimateTokens } from "../src/providers/ai/types";
import { newId } from "../src/lib/ids";
import type { Citation, WireMessage } from "./conversation-protocol";

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
  citations: string | null;
  persona: string | null;
  created_at: number;
}

/** What a stored message says: who wrote it, and for a reply its model call's outcome. */
export interface NewMessage {
  role: "user" | "assistant";
  content: string;
  authorId: string | null;
  clientId: string | null;
  status: WireMessage["status"];
  result?: Pick<ChatResult, "model" | "provider" | "usage">;
  error?: string;
  /** The knowledge a grounded reply cited. */
  citations?: Citation[];
  /** The persona version a reply's system prompt began with. */
  persona?: { id: string; version: number } | null;
}

/**
 * A conversation's message log, in its room's SQLite: `seq` grows by one per stored message and
 * is never reused (retention deletes old messages, not numbers); a client's `client_id` is unique
 * per author, so a retried post finds what it stored.
 */
/** What an erased person's message says instead. */
export const ERASED_TEXT = "[erased]";

export class MessageLog {
  constructor(private readonly sql: SqlStorage) {
    this.createSchema();
  }

  /** The log's table (again after the room's storage is wiped). */
  createSchema() {
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
    // Added with grounding: a log made before it gains the column.
    const columns = this.sql.exec<{ name: string }>(`PRAGMA table_info(messages)`).toArray().map((c) => c.name);
    if (!columns.includes("citations")) this.sql.exec(`ALTER TABLE messages ADD COLUMN citations TEXT`);
    // Added with personas.
    if (!columns.includes("persona")) this.sql.exec(`ALTER TABLE messages ADD COLUMN persona TEXT`);
    this.sql.exec(`CREATE UNIQUE INDEX IF NOT EXISTS messages_client_id ON messages (author_id, client_id) WHERE client_id IS NOT NULL`);
    this.sql.exec(`CREATE INDEX IF NOT EXISTS messages_created_at ON messages (created_at)`);
  }

  /** Stores a message; answers it as clients see it, with its seq and time. */
  append(m: NewMessage): { message: WireMessage; seq: number; at: number } {
    const row = this.sql
      .exec<MessageRow>(
        `INSERT INTO messages (id, role, content, author_id, client_id, status, model, provider, tokens_in, tokens_out, error, citations, persona, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
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
        m.citations?.length ? JSON.stringify(m.citations) : null,
        m.persona ? JSON.stringify(m.persona) : null,
        Date.now(),
      )
      .one();
    return { message: toWire(row), seq: row.seq, at: row.created_at };
  }

  /** Messages after `after`, oldest first (at most `limit`). */
  after(after: number, limit = -1, authorId?: string): WireMessage[] {
    if (authorId) return this.sql.exec<MessageRow>(`SELECT * FROM messages WHERE seq > ? AND author_id = ? ORDER BY seq LIMIT ?`, after, authorId, limit).toArray().map(toWire);
    return this.sql.exec<MessageRow>(`SELECT * FROM messages WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit).toArray().map(toWire);
  }

  /** The message an author posted with `clientId`, if stored. */
  byClientId(authorId: string, clientId: string): WireMessage | undefined {
    const row = this.sql.exec<MessageRow>(`SELECT * FROM messages WHERE author_id = ? AND client_id = ?`, authorId, clientId).toArray()[0];
    return row && toWire(row);
  }

  /**
   * A person's messages erased: the text they wrote is replaced, and they are no longer named as
   * the author of anything (replies they asked for keep their text, as the tenant's content).
   * Answers how many messages named them.
   */
  eraseAuthor(authorId: string, tombstone: string): number {
    return this.sql.exec(`UPDATE messages SET content = CASE WHEN role = 'user' THEN ? ELSE content END, author_id = ?, client_id = NULL WHERE author_id = ?`, ERASED_TEXT, tombstone, authorId).rowsWritten;
  }

  /** The last seq given out (0 before the first message). */
  lastSeq(): number {
    const row = this.sql.exec<{ seq: number }>(`SELECT seq FROM sqlite_sequence WHERE name = 'messages'`).toArray()[0];
    return row?.seq ?? 0;
  }

  /** As much recent complete history as fits `budget` estimated tokens, oldest first (always the latest message). */
  recent(budget: number): ChatMessage[] {
    const rows = this.sql.exec<MessageRow>(`SELECT role, content FROM messages WHERE status = 'complete' ORDER BY seq DESC LIMIT 200`).toArray();
    const history: ChatMessage[] = [];
    for (const m of rows) {
      budget -= estimateTokens(m.content);
      if (budget < 0 && history.length) break;
      history.unshift({ role: m.role, content: m.content });
    }
    return history;
  }

  /** Deletes messages stored before `cutoff` (ms); answers how many. */
  deleteBefore(cutoff: number): number {
    return this.sql.exec(`DELETE FROM messages WHERE created_at < ?`, cutoff).rowsWritten;
  }
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
    citations: row.citations ? (JSON.parse(row.citations) as Citation[]) : null,
    persona: row.persona ? (JSON.parse(row.persona) as { id: string; version: number }) : null,
  };
}
