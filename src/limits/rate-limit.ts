import type { LeaseResult, RateLimiter } from "../../durable-objects/rate-limiter";

/** One limit on a request: a named policy, the limiter key it counts under, and its quota per window. */
export interface Limit {
  /** The policy name in the RateLimit headers: "tenant", "member" or "api_key". */
  policy: string;
  key: string;
  limit: number;
  windowSeconds: number;
}

/** The outcome of taking one admission under a limit. */
export interface Decision {
  limit: Limit;
  ok: boolean;
  remaining: number;
  /** Seconds until the window has room again. */
  resetSeconds: number;
}

interface Lease {
  limit: number;
  tokens: number;
  remaining: number;
  resetAt: number;
  expiresAt: number;
}

/** Leases older than this are given back: admissions are counted when leased, so a lease must be spent soon. */
const LEASE_TTL_MS = 1000;
const leases = new Map<string, Lease>();
/** What each key's limiter last said was left: near the end of the budget, lease one at a time so no slice sits unused. */
const lastRemaining = new Map<string, number>();

/**
 * How many admissions an isolate leases at a time: a small slice of the limit, so the limiter is
 * asked about once per slice rather than once per request, and an isolate sits on few at most.
 */
export function leaseSize(limit: number): number {
  return Math.max(1, Math.min(10, Math.floor(limit / 50)));
}

type Namespace = DurableObjectNamespace<RateLimiter>;

const stubOf = (ns: Namespace, key: string) => ns.get(ns.idFromName(key));

/**
 * Takes one admission under `limit`, from this isolate's lease when it has one, else by leasing
 * more from the key's RateLimiter. Only what the limiter granted is ever admitted, so the limit
 * holds exactly across isolates; unused leased admissions are given back when the lease lapses.
 *
 * A request never waits on another request's lease call: in Workers, the continuation would run
 * in that other request's I/O context and its own I/O would fail once that request ended. So a
 * request that finds the lease empty leases for itself and leaves what it does not use for others.
 */
export async function take(ns: Namespace, limit: Limit, waitUntil: (p: Promise<unknown>) => void): Promise<Decision> {
  const now = Date.now();
  const lease = leases.get(limit.key);
  // A lapsed lease's unused admissions go back with the next lease call itself, not after it.
  let giveBack = 0;
  if (lease && (lease.expiresAt <= now || lease.limit !== limit.limit)) {
    giveBack = lease.tokens;
    leases.delete(limit.key);
  } else if (lease && lease.tokens > 0) {
    lease.tokens--;
    return { limit, ok: true, remaining: lease.remaining + lease.tokens, resetSeconds: Math.max(0, Math.ceil((lease.resetAt - now) / 1000)) };
  }

  const slice = leaseSize(limit.limit);
  const want = (lastRemaining.get(limit.key) ?? Number.POSITIVE_INFINITY) < 4 * slice ? 1 : slice;
  const answer: LeaseResult = await stubOf(ns, limit.key).lease(limit.limit, limit.windowSeconds, want, giveBack);
  if (lastRemaining.size > 10_000) lastRemaining.clear();
  lastRemaining.set(limit.key, answer.remaining);
  const at = Date.now();
  const resetSeconds = Math.max(answer.granted ? 0 : 1, Math.ceil(answer.resetMs / 1000));
  if (answer.granted === 0) {
    // A slice another request leased meanwhile may still have room; the limiter counted it already.
    const pooled = leases.get(limit.key);
    if (pooled && pooled.tokens > 0 && pooled.expiresAt > at && pooled.limit === limit.limit) {
      pooled.tokens--;
      return { limit, ok: true, remaining: pooled.tokens, resetSeconds };
    }
    return { limit, ok: false, remaining: 0, resetSeconds };
  }
  const spare = answer.granted - 1;
  if (spare > 0) {
    const current = leases.get(limit.key);
    if (current && current.expiresAt > at && current.limit === limit.limit) {
      current.tokens += spare;
      current.remaining = Math.min(current.remaining, answer.remaining);
    } else {
      if (current?.tokens) waitUntil(stubOf(ns, limit.key).release(current.tokens));
      leases.set(limit.key, { limit: limit.limit, tokens: spare, remaining: answer.remaining, resetAt: at + answer.resetMs, expiresAt: at + LEASE_TTL_MS });
    }
  }
  return { limit, ok: true, remaining: answer.remaining + spare, resetSeconds };
}

/** `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers) for the decisions of one request. */
export function rateLimitHeaders(decisions: Decision[]): Record<string, string> {
  if (!decisions.length) return {};
  const tightest = decisions.reduce((a, b) => (b.remaining < a.remaining ? b : a));
  return {
    "RateLimit-Policy": decisions.map((d) => `"${d.limit.policy}";q=${d.limit.limit};w=${d.limit.windowSeconds}`).join(", "),
    RateLimit: `"${tightest.limit.policy}";r=${tightest.remaining};t=${tightest.resetSeconds}`,
  };
}
