import { and, eq, type SQL, sql } from "drizzle-orm";
import { ApiError } from "../lib/errors";
import type { TenantDb } from "./router";
import { tokenQuota } from "./tenant/schema";

/** A reservation against a tenant's monthly tokens, to settle or release when the call ends. */
export interface Reservation {
  tenantId: string;
  month: string;
  tokens: number;
}

/** YYYY-MM (UTC): the quota period a time falls in. */
export const monthOf = (d: Date) => d.toISOString().slice(0, 7);

/**
 * The two statements that reserve `tokens` of `month`'s quota, for a caller's batch: make sure the
 * month's row exists, then add to `reserved` only while used + reserved + tokens stays within
 * `limit` (and `condition` holds). The check and the increment are one statement, so concurrent
 * calls cannot all slip under the quota: together they overshoot it by at most what one call uses
 * beyond its reservation. The second statement returns a row when it reserved.
 */
export function reservationStatements(db: TenantDb, tenantId: string, month: string, tokens: number, limit: number, condition: SQL = sql`1`) {
  return [
    db.insert(tokenQuota).values({ tenantId, month }).onConflictDoNothing(),
    db
      .update(tokenQuota)
      .set({ reserved: sql`${tokenQuota.reserved} + ${tokens}` })
      .where(and(eq(tokenQuota.tenantId, tenantId), eq(tokenQuota.month, month), sql`${tokenQuota.used} + ${tokenQuota.reserved} + ${tokens} <= ${limit}`, condition))
      .returning({ month: tokenQuota.month }),
  ] as const;
}

/** Reserves `tokens` of this month's quota, or returns null when that would pass `limit`. */
export async function reserveTokens(db: TenantDb, tenantId: string, tokens: number, limit: number, now = new Date()): Promise<Reservation | null> {
  const month = monthOf(now);
  const [, reserved] = await db.batch(reservationStatements(db, tenantId, month, tokens, limit));
  return reserved.length ? { tenantId, month, tokens } : null;
}

/**
 * Replaces a reservation with the tokens the call really used, counting at most what was reserved:
 * the reservation fitted the quota, so a provider that overran its output limit (or a prompt longer
 * than estimated) can never push the month past it. Usage events still record every token.
 */
export async function settleTokens(db: TenantDb, r: Reservation, used: number): Promise<void> {
  await db
    .update(tokenQuota)
    .set({ reserved: sql`MAX(0, ${tokenQuota.reserved} - ${r.tokens})`, used: sql`${tokenQuota.used} + ${Math.min(used, r.tokens)}` })
    .where(and(eq(tokenQuota.tenantId, r.tenantId), eq(tokenQuota.month, r.month)))
    .run();
}

/** Gives a reservation back (the call failed before using anything we can count). */
export async function releaseTokens(db: TenantDb, r: Reservation): Promise<void> {
  await settleTokens(db, r, 0);
}

/** The query for this month's quota row (none before the month's first reservation), for a batch. */
export function quotaRow(db: TenantDb, tenantId: string, now = new Date()) {
  return db.select({ used: tokenQuota.used, reserved: tokenQuota.reserved }).from(tokenQuota).where(and(eq(tokenQuota.tenantId, tenantId), eq(tokenQuota.month, monthOf(now))));
}

/** Seconds until the first second of next month (UTC), when monthly quotas start again. */
export function secondsToNextMonth(now = new Date()): number {
  return Math.ceil((Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1) - now.getTime()) / 1000);
}

/** The 429 for a spent monthly quota, with Retry-After at the start of next month. */
export function quotaExceeded(detail: string, now = new Date()): ApiError {
  return new ApiError("QUOTA_EXCEEDED", detail, { headers: { "Retry-After": String(secondsToNextMonth(now)) } });
}
