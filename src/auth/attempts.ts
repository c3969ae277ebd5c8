import { LIMITER_KEYS } from "../limits/rate-limit";
import type { Env } from "../env";
import { sha256Hex } from "../lib/crypto";
import { ApiError } from "../lib/errors";

/**
 * Failed password proofs an account may have in 15 minutes, counted per account (users are global)
 * whichever tenant, route or address they come from: logins and invitation acceptances alike.
 */
export const ACCOUNT_FAILURES = { limit: 10, windowSeconds: 900 } as const;

/** A password proof in progress: counted as a failure unless it succeeds. */
export interface Attempt {
  /** The proof succeeded: its admission is given back, so only failures count. */
  succeeded(): Promise<void>;
}

/**
 * Starts a password proof for `email`, refused with 429 TOO_MANY_LOGIN_ATTEMPTS once the account
 * has had its failures. The admission is taken before the password is checked, so concurrent
 * guesses count too; an email with no account is counted the same way, so the answer never says
 * whether the account exists.
 */
export async function startAttempt(env: Env, email: string): Promise<Attempt> {
  const ns = env.RATE_LIMITER;
  const limiter = ns.get(ns.idFromName(LIMITER_KEYS.accountFailures(await sha256Hex(email))));
  const answer = await limiter.lease(ACCOUNT_FAILURES.limit, ACCOUNT_FAILURES.windowSeconds, 1);
  if (!answer.granted) {
    const retryAfter = Math.max(1, Math.ceil(answer.resetMs / 1000));
    throw new ApiError("TOO_MANY_LOGIN_ATTEMPTS", `Too many failed sign-ins for this account; try again in ${retryAfter} s`, { headers: { "Retry-After": String(retryAfter) } });
  }
  return { succeeded: () => limiter.release(1) };
}
