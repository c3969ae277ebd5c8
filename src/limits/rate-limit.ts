import type { LeaseResult, RateLimiter } from "../../durable-objects/rate-limiter";

/**
 * The name of every RateLimiter object, in one place: the limits count under these, and erasure
 * (src/compliance/erasure.ts) empties the objects of an erased person or tenant by the same names.
 */
export const LIMITER_KEYS = {
  tenant: (tenantId: string) => `tenant:${tenantId}`,
  member: (tenantId: string, userId: string) => `member:${tenantId}:${userId}`,
  apiKey: (keyId: string) => `key:${keyId}`,
  /** Open event streams of a credential: a member's (all their tokens together) or a key's. */
  streams: (tenantId: string, credential: { userId: string } | { keyId: string }) => `streams:${tenantId}:${"keyId" in credential ? `key:${credential.keyId}` : `member:${credential.userId}`}`,
  webhookEndpoint: (tenantId: string, endpointId: string) => `webhook:${tenantId}:${endpointId}`,
  /** Failed sign-ins of an account, by the SHA-256 hex of its email. */
  accountFailures: (emailHash: string) => `account-failures:${emailHash}`,
};

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
export async function take(ns: Namespace, limit: Limit, waitUntil: (p: Promise<unknown>) => void, retries = 0): Promise<Decision> {
  const now = Date.now();
  const lease = leases.get(limit.key);
  if (lease && (lease.expiresAt <= now || lease.limit !== limit.limit)) {
    owe(limit.key, lease.tokens);
    leases.delete(limit.key);
  } else if (lease && lease.tokens > 0) {
    lease.tokens--;
    return { limit, ok: true, remaining: lease.remaining + lease.tokens, resetSeconds: Math.max(0, Math.ceil((lease.resetAt - now) / 1000)) };
  }

  // Lease a slice only while the budget is far from spent: a spare that arrives after a concurrent
  // request was refused would sit unused. "Far" grows with the lease calls already in flight from
  // this isolate; before it has heard what is left, only the first caller leases a slice.
  const slice = leaseSize(limit.limit);
  const inFlight = leasing.get(limit.key) ?? 0;
  const known = lastRemaining.get(limit.key);
  const want = (known === undefined ? inFlight > 0 : known < (4 + inFlight) * slice) ? 1 : slice;
  // Admissions this isolate owes back go with the lease call itself, so they count for it.
  const giveBack = owed.get(limit.key) ?? 0;
  owed.delete(limit.key);
  leasing.set(limit.key, (leasing.get(limit.key) ?? 0) + 1);
  let answer: LeaseResult;
  try {
    answer = await stubOf(ns, limit.key).lease(limit.limit, limit.windowSeconds, want, giveBack);
  } catch (err) {
    owe(limit.key, giveBack);
    throw err;
  } finally {
    decrement(leasing, limit.key);
  }
  if (lastRemaining.size > 10_000) lastRemaining.clear();
  lastRemaining.set(limit.key, answer.remaining);
  const at = Date.now();
  const resetSeconds = Math.max(answer.granted ? 0 : 1, Math.ceil(answer.resetMs / 1000));
  if (answer.granted === 0) {
    // A slice another request leased meanwhile may still have room; the limiter counted it already.
    const pooled = leases.get(limit.key);
    if (pooled && pooled.tokens > 0 && pooled.limit === limit.limit) {
      if (pooled.expiresAt > at) {
        pooled.tokens--;
        return { limit, ok: true, remaining: pooled.tokens, resetSeconds };
      }
      // It lapsed while this call was out: take again, giving its admissions back in that call.
      return take(ns, limit, waitUntil, retries);
    }
    // While the budget was not yet known to be spent, admissions this isolate holds elsewhere —
    // owed back, or on their way in other requests' lease calls — are not a refusal's to ignore:
    // look again shortly (this request's own timer, never another request's call), carrying back
    // what is owed, a few times at most. Once the budget is known spent, refusals are immediate.
    const spentBefore = known !== undefined && known <= 0;
    if (!spentBefore && retries < MAX_RETAKES && (owed.has(limit.key) || (leasing.get(limit.key) ?? 0) > 0)) {
      await new Promise((r) => setTimeout(r, 5 * (retries + 1)));
      return take(ns, limit, waitUntil, retries + 1);
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
      if (current?.tokens) owe(limit.key, current.tokens);
      leases.set(limit.key, { limit: limit.limit, tokens: spare, remaining: answer.remaining, resetAt: at + answer.resetMs, expiresAt: at + LEASE_TTL_MS });
    }
  }
  // Owed admissions no lease call of this isolate carried back soon go back on their own, for other isolates.
  if (owed.has(limit.key)) waitUntil(returnOwed(ns, limit.key));
  return { limit, ok: true, remaining: answer.remaining + spare, resetSeconds };
}

/** How many times a request about to be refused looks again while this isolate's admissions are in motion. */
const MAX_RETAKES = 5;

/** Admissions of lapsed leases this isolate has yet to give back, by key. */
const owed = new Map<string, number>();
/** Lease calls in flight from this isolate, by key. */
const leasing = new Map<string, number>();

function decrement(counts: Map<string, number>, key: string) {
  const n = (counts.get(key) ?? 1) - 1;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}

function owe(key: string, tokens: number) {
  if (tokens > 0) owed.set(key, (owed.get(key) ?? 0) + tokens);
}

/** Gives back what is still owed for `key` after a moment (unless a lease call took it back first). */
async function returnOwed(ns: Namespace, key: string): Promise<void> {
  await new Promise((r) => setTimeout(r, 100));
  const tokens = owed.get(key);
  if (!tokens) return;
  owed.delete(key);
  await stubOf(ns, key).release(tokens);
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
