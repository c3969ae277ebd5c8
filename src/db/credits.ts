import { insertWhere } from "./insert-where";
import { eq, sql } from "drizzle-orm";
import { newId } from "../lib/ids";
import { creditBalances, creditLedger } from "./control/schema";
import type { ControlDb } from "./router";

/**
 * Moves a tenant's credit by `amountMicros` (positive grants, negative debits): the ledger entry
 * and an atomic increment of the balance in one batch, so concurrent movements never lose one
 * another (no read-modify-write). A debit with a `reference` already debited is a retry: it moves
 * nothing (the ledger's unique index refuses it, and the increment runs only if the entry landed).
 * Returns the balance after this movement.
 */
export async function moveCredit(
  db: ControlDb,
  entry: { tenantId: string; amountMicros: number; kind: "grant" | "debit"; reason: string; reference?: string | null },
): Promise<number> {
  const [, , balance] = await db.batch([
    db
      .insert(creditLedger)
      .values({ id: newId("crd"), tenantId: entry.tenantId, amountMicros: entry.amountMicros, kind: entry.kind, reason: entry.reason, reference: entry.reference ?? null })
      .onConflictDoNothing(),
    insertWhere(db, creditBalances, { tenantId: entry.tenantId, balanceMicros: entry.amountMicros }, sql`changes() > 0`).onConflictDoUpdate({ target: creditBalances.tenantId, set: { balanceMicros: sql`${creditBalances.balanceMicros} + ${entry.amountMicros}` } }),
    db.select({ balance: creditBalances.balanceMicros }).from(creditBalances).where(eq(creditBalances.tenantId, entry.tenantId)),
  ]);
  return balance[0]?.balance ?? 0;
}

/** A tenant's balance (0 before its first grant). */
export async function creditBalance(db: ControlDb, tenantId: string): Promise<number> {
  return (await db.select({ balance: creditBalances.balanceMicros }).from(creditBalances).where(eq(creditBalances.tenantId, tenantId)).get())?.balance ?? 0;
}
