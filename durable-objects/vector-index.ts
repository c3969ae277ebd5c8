import { DurableObject } from "cloudflare:workers";
import { eraseStorage } from "./erase";
import type { Env } from "../src/env";

/** A metadata value a vector may carry and a filter may compare. */
export type MetadataValue = string | number | boolean;

/** A vector as the index stores it. */
export interface IndexedVector {
  id: string;
  values: number[];
  metadata?: Record<string, MetadataValue>;
}

/** Vectorize's filter language: a value (equality), or one operator per field. */
export type MetadataFilter = Record<
  string,
  MetadataValue | null | { $eq?: MetadataValue | null; $ne?: MetadataValue | null; $lt?: MetadataValue; $lte?: MetadataValue; $gt?: MetadataValue; $gte?: MetadataValue; $in?: MetadataValue[]; $nin?: MetadataValue[] }
>;

export interface IndexMatch {
  id: string;
  score: number;
  metadata?: Record<string, MetadataValue>;
}

/** What `describe` tells: how many vectors are searchable, and the last mutation they reflect. */
export interface IndexInfo {
  vectorCount: number;
  dimensions: number | null;
  processedUpToMutation: string | null;
  processedUpToDatetime: string | null;
}

interface MutationRow extends Record<string, SqlStorageValue> {
  seq: number;
  id: string;
  kind: "upsert" | "delete";
  body: string;
  created_at: number;
  visible_at: number;
}

/**
 * The local stand-in for one Vectorize namespace (`VECTOR_PROVIDER=local`): a real index, not a
 * mock. Vectors live in this object's SQLite as float32 blobs (scaled to unit length) and a query
 * is an exact cosine search over them, with Vectorize's metadata filters. Like Vectorize, writes are mutations that become
 * searchable later — here after `visibleAfterMs` (0: at once), so the eventual-consistency path can
 * be exercised — and `describe` names the last mutation applied.
 */
export class LocalVectorIndex extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.createSchema();
  }

  private createSchema() {
    this.sql.exec(`CREATE TABLE IF NOT EXISTS vectors (id TEXT PRIMARY KEY, vec BLOB NOT NULL, metadata TEXT)`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS mutations (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL, visible_at INTEGER NOT NULL)`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
  }

  /**
   * Inserts or replaces vectors by id; answers the mutation's id, or (nothing written) why not:
   * every vector must have the index's dimensions. (An answer, not a throw: a refusal is the
   * caller's to raise in its own context.)
   */
  async upsert(vectors: IndexedVector[], visibleAfterMs = 0): Promise<{ mutationId: string } | { refused: string }> {
    const dimensions = this.dimensions() ?? vectors[0]?.values.length;
    const wrong = vectors.find((v) => v.values.length !== dimensions);
    if (wrong) return { refused: `vector ${wrong.id} has ${wrong.values.length} dimensions; the index has ${dimensions}` };
    return this.record("upsert", vectors, visibleAfterMs);
  }

  /** Deletes everything this object stores (its tenant, or the person it counts, is erased); answers whether it held anything. */
  async erase(): Promise<boolean> {
    const held = await eraseStorage(this.ctx.storage);
    // This instance may be asked again (a new member, a new key): it keeps working, from empty.
    this.createSchema();
    return held;
  }

  /** Deletes vectors by id; answers the mutation's id. */
  async deleteByIds(ids: string[], visibleAfterMs = 0): Promise<{ mutationId: string }> {
    return this.record("delete", ids, visibleAfterMs);
  }

  /**
   * The `topK` searchable vectors nearest `values` by cosine similarity that pass `filter`. The
   * filter runs in SQL over the stored metadata, so rows it excludes are never read into JavaScript,
   * and only the best `topK` are kept while scanning.
   */
  query(values: number[], opts: { topK: number; filter?: MetadataFilter; returnMetadata?: boolean }): { matches: IndexMatch[]; count: number } {
    this.applyDue();
    const query = Float32Array.from(values);
    let norm = 0;
    for (const x of query) norm += x * x;
    norm = Math.sqrt(norm) || 1;
    const where = opts.filter ? filterSql(opts.filter) : { sql: "1", params: [] };
    const best: { id: string; score: number }[] = [];
    for (const row of this.sql.exec<{ id: string; vec: ArrayBuffer }>(`SELECT id, vec FROM vectors WHERE ${where.sql}`, ...where.params)) {
      // Stored at unit length, so the cosine is the dot product over the query's norm.
      const vec = new Float32Array(row.vec);
      if (vec.length !== query.length) continue;
      let dot = 0;
      for (let i = 0; i < vec.length; i++) dot += vec[i]! * query[i]!;
      const score = dot / norm;
      if (best.length === opts.topK && score <= best[best.length - 1]!.score) continue;
      // Insert in order, dropping the worst when full (topK is small: a sorted array beats a heap here).
      let at = best.length;
      while (at > 0 && (best[at - 1]!.score < score || (best[at - 1]!.score === score && best[at - 1]!.id > row.id))) at--;
      best.splice(at, 0, { id: row.id, score });
      if (best.length > opts.topK) best.pop();
    }
    const matches: IndexMatch[] = best.map((m) => (opts.returnMetadata ? { ...m, metadata: this.metadataOf(m.id) } : m));
    return { matches, count: matches.length };
  }

  private metadataOf(id: string): Record<string, MetadataValue> {
    const raw = this.sql.exec<{ metadata: string | null }>(`SELECT metadata FROM vectors WHERE id = ?`, id).toArray()[0]?.metadata;
    return raw ? (JSON.parse(raw) as Record<string, MetadataValue>) : {};
  }

  /** The ids among these that searches can find now. */
  visible(ids: string[]): string[] {
    this.applyDue();
    return this.sql.exec<{ id: string }>(`SELECT id FROM vectors WHERE id IN (SELECT value FROM json_each(?))`, JSON.stringify(ids)).toArray().map((r) => r.id);
  }

  describe(): IndexInfo {
    this.applyDue();
    const count = this.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM vectors`).one().n;
    return {
      vectorCount: count,
      dimensions: this.dimensions(),
      processedUpToMutation: this.state("processed_mutation"),
      processedUpToDatetime: this.state("processed_at"),
    };
  }

  override async alarm(): Promise<void> {
    this.applyDue();
    const next = this.sql.exec<{ at: number | null }>(`SELECT MIN(visible_at) AS at FROM mutations`).one().at;
    if (next !== null) await this.ctx.storage.setAlarm(next);
  }

  private async record(kind: "upsert" | "delete", body: unknown, visibleAfterMs: number): Promise<{ mutationId: string }> {
    const mutationId = crypto.randomUUID();
    const now = Date.now();
    const visibleAt = now + Math.max(0, visibleAfterMs);
    this.sql.exec(`INSERT INTO mutations (id, kind, body, created_at, visible_at) VALUES (?, ?, ?, ?, ?)`, mutationId, kind, JSON.stringify(body), now, visibleAt);
    if (visibleAfterMs <= 0) {
      this.applyDue();
    } else {
      // Applied by the alarm at the latest (a query or describe applies what is due before answering).
      const current = await this.ctx.storage.getAlarm();
      if (current === null || current > visibleAt) await this.ctx.storage.setAlarm(visibleAt);
    }
    return { mutationId };
  }

  /** Applies, in order, every mutation whose time has come (a later one waits for those before it). */
  private applyDue() {
    const now = Date.now();
    for (const m of this.sql.exec<MutationRow>(`SELECT * FROM mutations ORDER BY seq`).toArray()) {
      if (m.visible_at > now) break;
      this.ctx.storage.transactionSync(() => {
        if (m.kind === "upsert") {
          for (const v of JSON.parse(m.body) as IndexedVector[]) {
            if (this.dimensions() === null) this.setState("dimensions", String(v.values.length));
            this.sql.exec(
              `INSERT INTO vectors (id, vec, metadata) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET vec = excluded.vec, metadata = excluded.metadata`,
              v.id,
              unitLength(v.values).buffer,
              v.metadata ? JSON.stringify(v.metadata) : null,
            );
          }
        } else {
          for (const id of JSON.parse(m.body) as string[]) this.sql.exec(`DELETE FROM vectors WHERE id = ?`, id);
        }
        this.sql.exec(`DELETE FROM mutations WHERE seq = ?`, m.seq);
        this.setState("processed_mutation", m.id);
        // As in Vectorize: the time of the last mutation applied (when it was made), so every mutation made before it is applied too.
        this.setState("processed_at", new Date(m.created_at).toISOString());
      });
    }
  }

  private dimensions(): number | null {
    const d = this.state("dimensions");
    return d === null ? null : Number(d);
  }

  private state(key: string): string | null {
    return this.sql.exec<{ value: string }>(`SELECT value FROM state WHERE key = ?`, key).toArray()[0]?.value ?? null;
  }

  private setState(key: string, value: string) {
    this.sql.exec(`INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value);
  }
}

/** The vector scaled to length 1 (cosine similarity does not see length; a zero vector stays zero). */
function unitLength(values: number[]): Float32Array {
  const norm = Math.hypot(...values) || 1;
  return Float32Array.from(values, (x) => x / norm);
}

const SQL_OPERATORS = { $eq: "IS", $ne: "IS NOT", $lt: "<", $lte: "<=", $gt: ">", $gte: ">=" } as const;
const sqlValue = (v: MetadataValue | null) => (typeof v === "boolean" ? Number(v) : v);

/**
 * Vectorize's filter language as SQL over the stored metadata JSON: every field's condition must
 * hold, and a missing field is null (so `$ne` and `$nin` pass it, ranges do not).
 */
export function filterSql(filter: MetadataFilter): { sql: string; params: (string | number | null)[] } {
  const parts: string[] = [];
  const params: (string | number | null)[] = [];
  for (const [field, condition] of Object.entries(filter)) {
    const value = "json_extract(metadata, ?)";
    const path = `$."${field.replaceAll('"', '""')}"`;
    const conditions = condition === null || typeof condition !== "object" ? { $eq: condition } : condition;
    for (const [op, operand] of Object.entries(conditions)) {
      if (op === "$in" || op === "$nin") {
        const list = JSON.stringify((operand as MetadataValue[]).map(sqlValue));
        parts.push(op === "$in" ? `${value} IN (SELECT value FROM json_each(?))` : `(${value} IS NULL OR ${value} NOT IN (SELECT value FROM json_each(?)))`);
        params.push(...(op === "$in" ? [path, list] : [path, path, list]));
      } else if (op in SQL_OPERATORS) {
        const sqlOp = SQL_OPERATORS[op as keyof typeof SQL_OPERATORS];
        parts.push(op === "$eq" || op === "$ne" ? `${value} ${sqlOp} ?` : `(${value} IS NOT NULL AND ${value} ${sqlOp} ?)`);
        params.push(...(op === "$eq" || op === "$ne" ? [path] : [path, path]), sqlValue(operand as MetadataValue | null));
      } else {
        throw new Error(`unknown filter operator ${op}`);
      }
    }
  }
  return { sql: parts.length ? parts.join(" AND ") : "1", params };
}
