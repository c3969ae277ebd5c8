import type { Context } from "hono";
import type { AppEnv, Principal } from "../context";
import type { TenantRecord } from "../db/directory";
import type { Plan } from "../db/plans";
import { ApiError } from "../lib/errors";
import { type Limit, LIMITER_KEYS, rateLimitHeaders, take } from "../limits/rate-limit";

const WINDOW_SECONDS = 60;

/** The whole tenant's limit, from its plan: spent only by authenticated members and keys. */
export function tenantLimit(tenant: TenantRecord, plan: Plan): Limit {
  return { policy: "tenant", key: LIMITER_KEYS.tenant(tenant.id), limit: plan.requestsPerMinute, windowSeconds: WINDOW_SECONDS };
}

/** Signups a client address may make per minute, and other platform-host requests. */
export const SIGNUPS_PER_MINUTE = 10;
const PLATFORM_REQUESTS_PER_MINUTE = 600;
/**
 * Requests without a valid credential a client address may make per minute, on every tenant's
 * host together: logins, refreshes, invitation acceptances and refused credentials. They never
 * touch a tenant's own budget, so nobody can spend it without a credential of the tenant.
 */
export const ANONYMOUS_REQUESTS_PER_MINUTE = 120;

/** The address Cloudflare's edge sets on every request (a client cannot choose it there). */
export function clientAddress(c: Context<AppEnv>): string | undefined {
  return c.req.header("cf-connecting-ip") || undefined;
}

/**
 * The limit of a client address on the platform host (signup, the operator API), from the
 * CF-Connecting-IP header Cloudflare sets; a request without it (only local ones) is not counted.
 */
export function clientLimit(ip: string, signup: boolean): Limit {
  return signup
    ? { policy: "signup", key: `signup:${ip}`, limit: SIGNUPS_PER_MINUTE, windowSeconds: WINDOW_SECONDS }
    : { policy: "platform", key: `platform:${ip}`, limit: PLATFORM_REQUESTS_PER_MINUTE, windowSeconds: WINDOW_SECONDS };
}

/** The limit of a client address for requests that carry no valid credential of the tenant. */
export function anonymousLimit(ip: string): Limit {
  return { policy: "anonymous", key: `anon:${ip}`, limit: ANONYMOUS_REQUESTS_PER_MINUTE, windowSeconds: WINDOW_SECONDS };
}

/**
 * What an authenticated request counts under, tightest first: an API key's own limit (its lower
 * one if it carries one), the member behind the credential (a key's traffic counts under its
 * creator too, so minting keys does not multiply a member's budget), then the whole tenant.
 */
export function principalLimits(tenant: TenantRecord, plan: Plan, principal: Principal): Limit[] {
  const member: Limit = { policy: "member", key: LIMITER_KEYS.member(tenant.id, principal.userId), limit: plan.memberRequestsPerMinute, windowSeconds: WINDOW_SECONDS };
  const limits = [member, tenantLimit(tenant, plan)];
  if (principal.kind === "api_key") {
    const limit = Math.min(principal.keyLimit ?? plan.memberRequestsPerMinute, plan.memberRequestsPerMinute);
    limits.unshift({ policy: "api_key", key: LIMITER_KEYS.apiKey(principal.keyId), limit, windowSeconds: WINDOW_SECONDS });
  }
  return limits;
}

/** A 429 RATE_LIMITED for a refusal under `limit`, with Retry-After and the RateLimit headers. */
export function rateLimited(limit: Limit, resetSeconds: number, headers: Record<string, string> = {}): ApiError {
  return new ApiError("RATE_LIMITED", `Over the ${limit.policy} limit of ${limit.limit} requests per ${limit.windowSeconds} seconds; retry in ${resetSeconds} s`, {
    headers: { "Retry-After": String(resetSeconds), ...headers },
  });
}

/**
 * Takes one admission under each limit, remembering the outcomes for the response headers; the
 * first refusal is a 429 RATE_LIMITED with Retry-After. `RATE_LIMITS=off` skips it all (benchmarks).
 */
export async function enforceLimits(c: Context<AppEnv>, limits: Limit[]): Promise<void> {
  if (c.var.config.RATE_LIMITS === "off") return;
  const decisions = c.get("rateLimits") ?? [];
  c.set("rateLimits", decisions);
  for (const limit of limits) {
    const decision = await take(c.env.RATE_LIMITER, limit, (p) => c.executionCtx.waitUntil(p));
    decisions.push(decision);
    if (!decision.ok) throw rateLimited(limit, decision.resetSeconds, rateLimitHeaders(decisions));
  }
}

/** Counts a request that has no valid credential under its client address (not counted without one: only local requests). */
export async function limitAnonymous(c: Context<AppEnv>): Promise<void> {
  const ip = clientAddress(c);
  if (ip) await enforceLimits(c, [anonymousLimit(ip)]);
}

/** The RateLimit headers for what this request was counted under. */
export function limitHeaders(c: Context<AppEnv>): Record<string, string> {
  return rateLimitHeaders(c.get("rateLimits") ?? []);
}
