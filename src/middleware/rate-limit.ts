import type { Context } from "hono";
import type { AppEnv, Principal } from "../context";
import type { TenantRecord } from "../db/directory";
import type { Plan } from "../db/plans";
import { ApiError } from "../lib/errors";
import { type Limit, rateLimitHeaders, take } from "../limits/rate-limit";

const WINDOW_SECONDS = 60;

/** The whole tenant's limit, from its plan. */
export function tenantLimit(tenant: TenantRecord, plan: Plan): Limit {
  return { policy: "tenant", key: `tenant:${tenant.id}`, limit: plan.requestsPerMinute, windowSeconds: WINDOW_SECONDS };
}

/** Signups a client address may make per minute, and other platform-host requests. */
export const SIGNUPS_PER_MINUTE = 10;
const PLATFORM_REQUESTS_PER_MINUTE = 600;

/**
 * The limit of a client address on the platform host (signup, the operator API), from the
 * CF-Connecting-IP header Cloudflare sets; a request without it (only local ones) is not counted.
 */
export function clientLimit(ip: string, signup: boolean): Limit {
  return signup
    ? { policy: "signup", key: `signup:${ip}`, limit: SIGNUPS_PER_MINUTE, windowSeconds: WINDOW_SECONDS }
    : { policy: "platform", key: `platform:${ip}`, limit: PLATFORM_REQUESTS_PER_MINUTE, windowSeconds: WINDOW_SECONDS };
}

/** A member's limit, or an API key's (its own lower limit if it carries one). */
export function principalLimit(tenant: TenantRecord, plan: Plan, principal: Principal): Limit {
  if (principal.kind === "api_key") {
    const limit = Math.min(principal.keyLimit ?? plan.memberRequestsPerMinute, plan.memberRequestsPerMinute);
    return { policy: "api_key", key: `key:${principal.keyId}`, limit, windowSeconds: WINDOW_SECONDS };
  }
  return { policy: "member", key: `member:${tenant.id}:${principal.userId}`, limit: plan.memberRequestsPerMinute, windowSeconds: WINDOW_SECONDS };
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
    if (!decision.ok) {
      throw new ApiError("RATE_LIMITED", `Over the ${limit.policy} limit of ${limit.limit} requests per ${limit.windowSeconds} seconds; retry in ${decision.resetSeconds} s`, {
        headers: { "Retry-After": String(decision.resetSeconds), ...rateLimitHeaders(decisions) },
      });
    }
  }
}

/** The RateLimit headers for what this request was counted under. */
export function limitHeaders(c: Context<AppEnv>): Record<string, string> {
  return rateLimitHeaders(c.get("rateLimits") ?? []);
}
