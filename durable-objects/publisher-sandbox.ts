import { DurableObject } from "cloudflare:workers";
import { eraseStorage } from "./erase";
import type { Env } from "../src/env";

/** A post as the sandbox publishes it. */
export interface SandboxPost {
  idempotencyKey: string;
  text: string;
  media: string[];
  link: string | null;
}

/** How the sandbox answers a publish: done, or refused the way a network refuses. */
export type SandboxAnswer = { ok: true; id: string; url: string; replayed: boolean } | { ok: false; status: 429 | 500 | 400; error: string; retryAfterSeconds?: number };

/**
 * The local publisher's social network (PUBLISHER=local), one per connected channel account: it
 * keeps what it published in its own SQLite, answers a repeated idempotency key with the post it
 * already made (so a retried publish never posts twice), gives deterministic ids (the key's hash),
 * and can be told to fail, rate-limit or reject the next publishes (`script`), as a real network
 * does. Metrics grow with time since publication, deterministically.
 */
export class PublisherSandbox extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.createSchema();
  }

  private createSchema() {
    this.sql.exec(`CREATE TABLE IF NOT EXISTS posts (key TEXT PRIMARY KEY, id TEXT NOT NULL, text TEXT NOT NULL, media TEXT NOT NULL, link TEXT, published_at INTEGER NOT NULL)`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS script (seq INTEGER PRIMARY KEY AUTOINCREMENT, answer TEXT NOT NULL)`);
  }

  /** Queues answers for the next publishes (then they succeed again): `{status: 429|500|400, error, retryAfterSeconds?}`. */
  script(answers: { status: 429 | 500 | 400; error: string; retryAfterSeconds?: number }[]): void {
    for (const a of answers) this.sql.exec(`INSERT INTO script (answer) VALUES (?)`, JSON.stringify(a));
  }

  /** Deletes everything this object stores (its tenant, or the person it counts, is erased); answers whether it held anything. */
  async erase(): Promise<boolean> {
    const held = await eraseStorage(this.ctx.storage);
    // This instance may be asked again (a new member, a new key): it keeps working, from empty.
    this.createSchema();
    return held;
  }

  async publish(channel: string, post: SandboxPost): Promise<SandboxAnswer> {
    const existing = this.sql.exec<{ id: string }>(`SELECT id FROM posts WHERE key = ?`, post.idempotencyKey).toArray()[0];
    if (existing) return { ok: true, id: existing.id, url: `https://sandbox.tessera.local/${channel}/${existing.id}`, replayed: true };
    const next = this.sql.exec<{ seq: number; answer: string }>(`SELECT seq, answer FROM script ORDER BY seq LIMIT 1`).toArray()[0];
    if (next) {
      this.sql.exec(`DELETE FROM script WHERE seq = ?`, next.seq);
      return { ok: false, ...(JSON.parse(next.answer) as { status: 429 | 500 | 400; error: string; retryAfterSeconds?: number }) };
    }
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(post.idempotencyKey)));
    const id = Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
    this.sql.exec(`INSERT INTO posts (key, id, text, media, link, published_at) VALUES (?, ?, ?, ?, ?, ?)`, post.idempotencyKey, id, post.text, JSON.stringify(post.media), post.link, Date.now());
    return { ok: true, id, url: `https://sandbox.tessera.local/${channel}/${id}`, replayed: false };
  }

  /**
   * A post's counts so far: they grow with the hours since it was published, at a rate fixed by
   * its id, so the same moment always answers the same numbers. Null for a post not published here.
   */
  metrics(id: string): { impressions: number; clicks: number; reactions: number; shares: number; conversions: number } | null {
    const row = this.sql.exec<{ published_at: number }>(`SELECT published_at FROM posts WHERE id = ?`, id).toArray()[0];
    if (!row) return null;
    const hours = Math.max(0, (Date.now() - row.published_at) / 3_600_000);
    const seed = Number.parseInt(id.slice(0, 4), 16);
    const impressions = Math.floor(hours * (40 + (seed % 60)));
    const clicks = Math.floor((impressions * (2 + (seed % 5))) / 100);
    const reactions = Math.floor((impressions * (3 + (seed % 7))) / 100);
    return { impressions, clicks, reactions, shares: Math.floor(reactions / 4), conversions: Math.floor(clicks / 10) };
  }

  /** Everything published here, oldest first. */
  published(): { key: string; id: string; text: string; published_at: number }[] {
    return this.sql.exec<{ key: string; id: string; text: string; published_at: number }>(`SELECT key, id, text, published_at FROM posts ORDER BY published_at, id`).toArray();
  }
}
