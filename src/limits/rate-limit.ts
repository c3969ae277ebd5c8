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
  inflight?: Promise<void>;
}

/** Leases older than this are given back: admissions are counted when leased, so a lease must be spent soon. */
const LEASE_TTL_MS = 1000;
const leases = new Map<string, Lease>();

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
 */
export async function take(ns: Namespace, limit: Limit, waitUntil: (p: Promise<unknown>) => void): Promise<Decision> {
  for (;;) {
    const now = Date.now();
    let lease = leases.get(limit.key);
    if (lease && !lease.inflight && (lease.expiresAt <= now || lease.limit !== limit.limit)) {
      if (lease.tokens > 0) waitUntil(stubOf(ns, limit.key).release(lease.tokens));
      leases.delete(limit.key);
      lease = undefined;
    }
    if (lease?.inflight) {
      await lease.inflight;
      continue;
    }
    if (lease && lease.tokens > 0) {
      lease.tokens--;
      return { limit, ok: true, remaining: lease.remaining + lease.tokens, resetSeconds: Math.max(0, Math.ceil((lease.resetAt - now) / 1000)) };
    }
    const fresh: Lease = { limit: limit.limit, tokens: 0, remaining: 0, resetAt: now, expiresAt: now + LEASE_TTL_MS };
    let answer: LeaseResult | undefined;
    fresh.inflight = stubOf(ns, limit.key)
      .lease(limit.limit, limit.windowSeconds, leaseSize(limit.limit))
      .then((r) => {
        answer = r;
        fresh.tokens = r.granted;
        fresh.remaining = r.remaining;
        fresh.resetAt = Date.now() + r.resetMs;
      })
      .finally(() => {
        fresh.inflight = undefined;
      });
    leases.set(limit.key, fresh);
    await fresh.inflight;
    if (answer && answer.granted === 0) {
      leases.delete(limit.key);
      return { limit, ok: false, remaining: 0, resetSeconds: Math.max(1, Math.ceil(answer.resetMs / 1000)) };
    }
    // Granted: loop round and take from the lease (a racing request may take it first; then lease again).
  }
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
