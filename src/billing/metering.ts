import { and, eq, type SQL, sql } from "drizzle-orm";
import { moveCredit } from "../db/credits";
import { insertWhere } from "../db/insert-where";
import { monthOf } from "../db/quota";
import type { ControlDb, TenantDb } from "../db/router";
import { quotaHolds, tokenQuota, usageDaily, usageEvents } from "../db/tenant/schema";
import { costMicros } from "../limits/prices";

/**
 * The one path by which a model or embedding call is paid for. Every call has a `reference` (a
 * reply id, a run id…) and goes through four steps; the first three are statements for the
 * caller's own batch, so they commit with the change they belong to, and each happens once per
 * reference however often it is retried:
 *
 * 1. `reserve` before the call: a hold on an estimate of its tokens, refused when it would pass the
 *    month's quota (the check and the increment are one statement, so concurrent calls cannot all
 *    slip under it).
 * 2. `settle` after it: the usage event and its daily rollup, and the month's count moved from
 *    reserved to used — at most what was held, so a provider that overruns its limit cannot push
 *    the month past the quota (the usage event still records every token). The hold is deleted;
 *    a settle that finds no hold writes nothing.
 * 3. `release` when the call failed before anything could be counted: the hold given back.
 * 4. `debit` the tenant's credit by the call's cost, in the control database (another database, so
 *    not in the batch): the ledger refuses a second debit of a reference, so the caller retries it
 *    until it lands, from whatever durable record says it is owed.
 */

/** One model call, as usage records it. */
export interface ModelCall {
  tenantId: string;
  userId: string;
  apiKeyId: string | null;
  projectId: string;
  source: "chat" | "run" | "embedding";
  sourceId: string | null;
  model: string;
  provider: string;
  tokensIn: number;
  tokensOut: number;
  at?: Date;
}

/** What names one call's hold, usage event and debit. */
export interface CallRef {
  tenantId: string;
  reference: string;
}

const always = sql`1`;

const holdOf = (ref: CallRef) => and(eq(quotaHolds.tenantId, ref.tenantId), eq(quotaHolds.reference, ref.reference));
const heldColumn = (ref: CallRef, column: SQL) => sql`(SELECT ${column} FROM ${quotaHolds} WHERE ${holdOf(ref)})`;

/** The usage event's id: one per reference, so recording a call twice is refused by the key as well. */
export const usageEventId = (reference: string) => `use_${reference}`;

/**
 * Reserves `tokens` of the month's quota for the call `ref`, within `limit`, if `condition` holds
 * (and the reference holds nothing yet). The second statement returns a row when it reserved.
 */
export function reserve(db: TenantDb, ref: CallRef, tokens: number, limit: number, { condition = always, now = new Date() }: { condition?: SQL; now?: Date } = {}) {
  const month = monthOf(now);
  return [
    db.insert(tokenQuota).values({ tenantId: ref.tenantId, month }).onConflictDoNothing(),
    db
      .update(tokenQuota)
      .set({ reserved: sql`${tokenQuota.reserved} + ${tokens}` })
      .where(
        and(
          eq(tokenQuota.tenantId, ref.tenantId),
          eq(tokenQuota.month, month),
          sql`${tokenQuota.used} + ${tokenQuota.reserved} + ${tokens} <= ${limit}`,
          sql`NOT EXISTS (SELECT 1 FROM ${quotaHolds} WHERE ${holdOf(ref)})`,
          condition,
        ),
      )
      .returning({ month: tokenQuota.month }),
    insertWhere(db, quotaHolds, { tenantId: ref.tenantId, reference: ref.reference, month, tokens }, sql`changes() > 0`),
  ] as const;
}

/** Moves the hold's tokens out of `reserved` (`used` of them into `used`, at most the hold) and deletes it, if `condition` holds. */
function releaseHold(db: TenantDb, ref: CallRef, used: number, condition: SQL) {
  const tokens = heldColumn(ref, sql`${quotaHolds.tokens}`);
  return [
    db
      .update(tokenQuota)
      .set({ reserved: sql`MAX(0, ${tokenQuota.reserved} - ${tokens})`, used: sql`${tokenQuota.used} + MIN(${used}, ${tokens})` })
      .where(and(eq(tokenQuota.tenantId, ref.tenantId), sql`${tokenQuota.month} = ${heldColumn(ref, sql`${quotaHolds.month}`)}`, condition)),
    db.delete(quotaHolds).where(and(holdOf(ref), condition)),
  ] as const;
}

/**
 * Settles the call `ref` if `condition` holds and its hold is still there: its usage event, the
 * day's rollup, the month's quota, the hold deleted. Returns the statements and the call's cost.
 */
export function settle(db: TenantDb, ref: CallRef, call: ModelCall, condition: SQL = always) {
  const at = call.at ?? new Date();
  const day = at.toISOString().slice(0, 10);
  const cost = costMicros(call.provider, call.model, call.tokensIn, call.tokensOut);
  const held = and(sql`EXISTS (SELECT 1 FROM ${quotaHolds} WHERE ${holdOf(ref)})`, condition)!;
  const { tenantId, userId, apiKeyId, projectId, source, sourceId, model, provider, tokensIn, tokensOut } = call;
  const statements = [
    insertWhere(
      db,
      usageEvents,
      { id: usageEventId(ref.reference), tenantId, day, userId, apiKeyId, projectId, source, sourceId, model, provider, tokensIn, tokensOut, costMicros: cost, createdAt: at.toISOString() },
      held,
    ).onConflictDoNothing(),
    // Folded into the day only if the event above was written.
    insertWhere(db, usageDaily, { tenantId, day, model, projectId, userId, calls: 1, tokensIn, tokensOut, costMicros: cost }, sql`changes() > 0`).onConflictDoUpdate({
      target: [usageDaily.tenantId, usageDaily.day, usageDaily.model, usageDaily.projectId, usageDaily.userId],
      set: {
        calls: sql`${usageDaily.calls} + 1`,
        tokensIn: sql`${usageDaily.tokensIn} + ${tokensIn}`,
        tokensOut: sql`${usageDaily.tokensOut} + ${tokensOut}`,
        costMicros: sql`${usageDaily.costMicros} + ${cost}`,
      },
    }),
    ...releaseHold(db, ref, tokensIn + tokensOut, condition),
  ] as const;
  return { cost, statements };
}

/** Gives the call's hold back unused, if `condition` holds (the call failed, or never ran). */
export function release(db: TenantDb, ref: CallRef, condition: SQL = always) {
  return releaseHold(db, ref, 0, condition);
}

/** The cost recorded for the call `ref`, or null when it was never settled (nothing is owed). */
export async function recordedCost(db: TenantDb, ref: CallRef): Promise<number | null> {
  const row = await db
    .select({ cost: usageEvents.costMicros })
    .from(usageEvents)
    .where(and(eq(usageEvents.tenantId, ref.tenantId), eq(usageEvents.id, usageEventId(ref.reference))))
    .get();
  return row?.cost ?? null;
}

/** Debits the tenant's credit by a settled call's cost; a second debit of the same reference moves nothing. */
export async function debit(control: ControlDb, ref: CallRef, costMicros: number, reason: string): Promise<void> {
  await moveCredit(control, { tenantId: ref.tenantId, amountMicros: 0 - costMicros, kind: "debit", reason, reference: ref.reference });
}

/** Holds older than this belong to a call whose holder is gone (no call runs this long): the sweeper releases them. */
export const STALE_HOLD_MS = 60 * 60 * 1000;

/** Releases, unbilled, every hold of the tenant older than `STALE_HOLD_MS`; returns how many. */
export async function releaseStaleHolds(db: TenantDb, tenantId: string, now = Date.now()): Promise<number> {
  const cutoff = new Date(now - STALE_HOLD_MS).toISOString();
  const stale = await db
    .select({ reference: quotaHolds.reference })
    .from(quotaHolds)
    .where(and(eq(quotaHolds.tenantId, tenantId), sql`${quotaHolds.createdAt} < ${cutoff}`))
    .limit(100);
  if (!stale.length) return 0;
  const statements = stale.flatMap((h) => {
    const ref = { tenantId, reference: h.reference };
    return release(db, ref, sql`${heldColumn(ref, sql`${quotaHolds.createdAt}`)} < ${cutoff}`);
  });
  await db.batch(statements as [(typeof statements)[number], ...typeof statements]);
  return stale.length;
}
