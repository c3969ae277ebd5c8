/**
 * Deletes everything a Durable Object stores (its tenant, or the person it counts, is erased): its
 * alarm, its key-value entries and its SQLite tables. Answers whether it held anything, so an
 * erasure can count the objects it emptied.
 */
export async function eraseStorage(storage: DurableObjectStorage): Promise<boolean> {
  const tables = storage.sql.exec<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'`).toArray();
  const rows = tables.some((t) => storage.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM "${t.name}"`).one().n > 0);
  const held = rows || (await storage.list({ limit: 1 })).size > 0;
  await storage.deleteAlarm();
  await storage.deleteAll();
  return held;
}
