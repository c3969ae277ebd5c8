import { DurableObject } from "cloudflare:workers";
import { eraseStorage } from "./erase";
import type { Env } from "../src/env";

/** What a lease answered: how many requests it admitted, how many are left, and when a slot frees. */
export interface LeaseResult {
  granted: number;
  remaining: number;
  /** Milliseconds until the oldest admission in the window expires (0 when the window is empty). */
  resetMs: number;
}

/**
 * One per limited key (a tenant, a member, an API key). Counts admissions in a sliding window of
 * whole seconds in its own SQLite: at most `limit` in any `windowSeconds`. Callers lease a few
 * admissions at a time and give back what they did not use, so the count stays an upper bound
 * of what was admitted and the limit is exact however many isolates ask at once.
 */
export class RateLimiter extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.createSchema();
  }

  private createSchema() {
    this.sql.exec(`CREATE TABLE IF NOT EXISTS admitted (second INTEGER PRIMARY KEY, n INTEGER NOT NULL)`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS slots (id TEXT PRIMARY KEY, until INTEGER NOT NULL)`);
  }

  /** Deletes everything this object stores (its tenant, or the person it counts, is erased); answers whether it held anything. */
  async erase(): Promise<boolean> {
    const held = await eraseStorage(this.ctx.storage);
    // This instance may be asked again (a new member, a new key): it keeps working, from empty.
    this.createSchema();
    return held;
  }

  /**
   * Takes one of at most `max` concurrent slots (an open event stream, say) for up to `ttlMs`: a
   * holder that dies without releasing frees its slot by then. Refused with how long until the first frees.
   */
  acquire(max: number, ttlMs: number): { slot: string } | { retryMs: number } {
    const now = Date.now();
    this.sql.exec(`DELETE FROM slots WHERE until <= ?`, now);
    const held = this.sql.exec<{ n: number; first: number | null }>(`SELECT count(*) AS n, MIN(until) AS first FROM slots`).one();
    if (held.n >= max) return { retryMs: (held.first ?? now) - now };
    const slot = crypto.randomUUID();
    this.sql.exec(`INSERT INTO slots (id, until) VALUES (?, ?)`, slot, now + ttlMs);
    return { slot };
  }

  /** Frees a slot taken with `acquire`. */
  releaseSlot(slot: string): void {
    this.sql.exec(`DELETE FROM slots WHERE id = ?`, slot);
  }

  /**
   * Admits up to `want` requests now, within `limit` per `windowSeconds`, after giving back
   * `giveBack` unused admissions of the caller's lapsed lease (in the same call, so they count for
   * this lease rather than arriving after it was refused).
   */
  lease(limit: number, windowSeconds: number, want: number, giveBack = 0): LeaseResult {
    if (giveBack > 0) this.release(giveBack);
    const now = Date.now();
    const second = Math.floor(now / 1000);
    const oldestKept = second - windowSeconds + 1;
    this.sql.exec(`DELETE FROM admitted WHERE second < ?`, oldestKept);
    const used = this.sql.exec<{ used: number }>(`SELECT COALESCE(SUM(n), 0) AS used FROM admitted`).one().used;
    const granted = Math.max(0, Math.min(want, limit - used));
    if (granted > 0) {
      this.sql.exec(`INSERT INTO admitted (second, n) VALUES (?, ?) ON CONFLICT (second) DO UPDATE SET n = n + excluded.n`, second, granted);
    }
    const oldest = this.sql.exec<{ second: number | null }>(`SELECT MIN(second) AS second FROM admitted`).one().second;
    return { granted, remaining: Math.max(0, limit - used - granted), resetMs: oldest === null ? 0 : (oldest + windowSeconds) * 1000 - now };
  }

  /** Gives back `n` leased admissions that were not used (newest first). */
  release(n: number): void {
    let left = n;
    for (const row of this.sql.exec<{ second: number; n: number }>(`SELECT second, n FROM admitted ORDER BY second DESC`).toArray()) {
      if (left <= 0) break;
      const take = Math.min(left, row.n);
      this.sql.exec(`UPDATE admitted SET n = n - ? WHERE second = ?`, take, row.second);
      left -= take;
    }
    this.sql.exec(`DELETE FROM admitted WHERE n <= 0`);
  }
}
