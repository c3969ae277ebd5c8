import { and, eq, sql } from "drizzle-orm";
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
 * Reserves `tokens` of this month's quota, or returns null when used + reserved + tokens would pass
 * `limit`. The check and the increment are one statement, so concurrent calls cannot all slip under
 * the quota: together they overshoot it by at most what one call uses beyond its reservation.
 */
export async function reserveTokens(db: TenantDb, tenantId: string, tokens: number, limit: number, now = new Date()): Promise<Reservation | null> {
  const month = monthOf(now);
  const [, reserved] = await db.batch([
    db.insert(tokenQuota).values({ tenantId, month }).onConflictDoNothing(),
    db
      .update(tokenQuota)
      .set({ reserved: sql`${tokenQuota.reserved} + ${tokens}` })
      .where(and(eq(tokenQuota.tenantId, tenantId), eq(tokenQuota.month, month), sql`${tokenQuota.used} + ${tokenQuota.reserved} + ${tokens} <= ${limit}`))
      .returning({ month: tokenQuota.month }),
  ]);
  return reserved.length ? { tenantId, month, tokens } : null;
}

/** Replaces a reservation with the tokens the call really used. */
export async function settleTokens(db: TenantDb, r: Reservation, used: number): Promise<void> {
  await db
    .update(tokenQuota)
    .set({ reserved: sql`MAX(0, ${tokenQuota.reserved} - ${r.tokens})`, used: sql`${tokenQuota.used} + ${used}` })
    .where(and(eq(tokenQuota.tenantId, r.tenantId), eq(tokenQuota.month, r.month)))
    .run();
}

/** Gives a reservation back (the call failed before using anything we can count). */
export async function releaseTokens(db: TenantDb, r: Reservation): Promise<void> {
  await settleTokens(db, r, 0);
}

/** This month's used and reserved tokens. */
export async function quotaStatus(db: TenantDb, tenantId: string, now = new Date()): Promise<{ used: number; reserved: number }> {
  const row = await db.select().from(tokenQuota).where(and(eq(tokenQuota.tenantId, tenantId), eq(tokenQuota.month, monthOf(now)))).get();
  return { used: row?.used ?? 0, reserved: row?.reserved ?? 0 };
}
