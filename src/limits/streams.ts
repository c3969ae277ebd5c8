import { LIMITER_KEYS } from "./rate-limit";
import type { Context } from "hono";
import type { AppEnv } from "../context";
import { ApiError } from "../lib/errors";

/** Event streams one credential (an API key, or a member's access tokens) may hold open at once. */
export const MAX_STREAMS_PER_CREDENTIAL = 10;


/**
 * Takes one of the caller's event-stream slots for at most `maxMs` (the stream's own longest life),
 * or refuses with 429 TOO_MANY_CONNECTIONS and when one frees. Returns the release, for when the
 * stream ends; a stream whose Worker dies frees its slot at `maxMs` anyway.
 */
export async function openStream(c: Context<AppEnv>, maxMs: number): Promise<() => Promise<void>> {
  const ns = c.env.RATE_LIMITER;
  const limiter = ns.get(ns.idFromName(LIMITER_KEYS.streams(c.var.tenant.id, c.var.principal.kind === "api_key" ? { keyId: c.var.principal.keyId } : { userId: c.var.principal.userId })));
  const answer = await limiter.acquire(MAX_STREAMS_PER_CREDENTIAL, maxMs + 30_000);
  if ("retryMs" in answer) {
    const retryAfter = Math.max(1, Math.ceil(answer.retryMs / 1000));
    throw new ApiError("TOO_MANY_CONNECTIONS", `This credential already holds ${MAX_STREAMS_PER_CREDENTIAL} open event streams; close one first`, {
      headers: { "Retry-After": String(retryAfter) },
    });
  }
  return () => limiter.releaseSlot(answer.slot);
}
