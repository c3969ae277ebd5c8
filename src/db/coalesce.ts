import type { BatchItem, BatchResponse } from "drizzle-orm/batch";

type Items = readonly [BatchItem<"sqlite">, ...BatchItem<"sqlite">[]];
interface Batching {
  batch<T extends Items>(items: T): Promise<BatchResponse<T>>;
}

/**
 * The same database, whose `batch` gathers every batch submitted in one turn of the event loop
 * into a single round trip (one transaction), answering each caller with its own results. For
 * the work of one invocation that runs many independent changes at once — a queue batch's runs,
 * each claiming and finishing its own — where the database, not the statements, is the cost: ten
 * runs' claims become one round trip instead of ten.
 *
 * Only within one invocation (the results resolve in its I/O context), and only for statements
 * that are each safe alone: they share a transaction, so one that fails the batch fails every
 * caller's (each then retries as it would after any database error).
 */
export function coalescing<D extends Batching>(db: D): D {
  let pending: { items: Items; resolve: (results: unknown[]) => void; reject: (err: unknown) => void }[] = [];
  const flush = async () => {
    const group = pending;
    pending = [];
    try {
      const all = await db.batch(group.flatMap((g) => g.items) as unknown as Items);
      let at = 0;
      for (const g of group) {
        g.resolve((all as readonly unknown[]).slice(at, at + g.items.length));
        at += g.items.length;
      }
    } catch (err) {
      for (const g of group) g.reject(err);
    }
  };
  const batch = <T extends Items>(items: T) =>
    new Promise<BatchResponse<T>>((resolve, reject) => {
      if (!pending.length) setTimeout(flush, 0);
      pending.push({ items, resolve: resolve as (results: unknown[]) => void, reject });
    });
  return Object.create(db, { batch: { value: batch } }) as D;
}
