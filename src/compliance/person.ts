import { CONTROL_TABLES, type TablePlan, TENANT_TABLES } from "./plan";

/**
 * A person, as erasure finds them in the data: their id, email, the API keys they made, their
 * refresh-token families, and the tombstones that replace their ids where rows stay.
 */
export interface Person {
  userId: string;
  email: string;
  keyIds: string[];
  familyIds: string[];
  /** Per erasure, so unique keys that include a person's id (a review, a day's usage) stay unique. */
  tombstones: { user: string; key: string; email: string };
}

/** The ids an erasure puts where a person's stood: `usr_` or `key_` with an all-zero time, then the erasure's own random part. */
export function tombstonesFor(erasureId: string): Person["tombstones"] {
  const random = erasureId.slice(-16);
  return { user: `usr_0000000000${random}`, key: `key_0000000000${random}`, email: `erased-${random}@erased.invalid` };
}

/** One statement of a person's erasure in one table, with the count that says how many rows it will change. */
export interface Operation {
  table: string;
  kind: "deleted" | "pseudonymised";
  count: D1PreparedStatement;
  apply: D1PreparedStatement;
}

/** What rows a column names the person by: which of the person's identifiers it can hold. */
function valuesOf(column: string, who: Person, eventIds: string[]): string[] {
  switch (column) {
    case "email":
      return [who.email];
    case "family_id":
      return who.familyIds;
    case "event_id":
      return eventIds;
    case "api_key_id":
      return who.keyIds;
    case "id":
      return [who.userId];
    default:
      // A person's own columns (created_by, actor_id, …) hold their id, or one of their keys' where a key acted.
      return [who.userId, ...who.keyIds];
  }
}

const inList = (column: string) => `"${column}" IN (SELECT value FROM json_each(?))`;

/** A column's identifiers paired with what replaces them, in groups small enough for D1's 100 bound parameters. */
function replacements(who: Person): [string, string][][] {
  const pairs: [string, string][] = [[who.userId, who.tombstones.user], [who.email, who.tombstones.email], ...who.keyIds.map((k) => [k, who.tombstones.key] as [string, string])];
  const groups: [string, string][][] = [];
  for (let i = 0; i < pairs.length; i += 30) groups.push(pairs.slice(i, i + 30));
  return groups;
}

/**
 * The statements that erase a person from one database, table by table as its plan says: rows they
 * are named by in `erase.by` are deleted; `pseudonymise` columns holding their id (or a key's) get the
 * tombstone; `rewrite` text has their ids and email replaced. `eventIds` are the outbox events erased
 * with them (their copies in webhook messages go too).
 */
export function personOperations(d1: D1Database, plans: Record<string, TablePlan>, who: Person, eventIds: string[]): Operation[] {
  const ops: Operation[] = [];
  for (const [table, plan] of Object.entries(plans)) {
    const t = plan.person;
    if (t.erase) {
      const columns = t.erase.by.filter((c) => valuesOf(c, who, eventIds).length);
      if (columns.length) {
        const where = columns.map(inList).join(" OR ");
        const params = columns.map((c) => JSON.stringify(valuesOf(c, who, eventIds)));
        ops.push({
          table,
          kind: "deleted",
          count: d1.prepare(`SELECT count(*) AS n FROM "${table}" WHERE ${where}`).bind(...params),
          apply: d1.prepare(`DELETE FROM "${table}" WHERE ${where}`).bind(...params),
        });
      }
    }
    for (const column of t.pseudonymise ?? []) {
      const byKind: [string[], string][] = [
        [valuesOf(column, who, eventIds).filter((v) => v === who.userId), who.tombstones.user],
        [valuesOf(column, who, eventIds).filter((v) => v !== who.userId), who.tombstones.key],
      ];
      for (const [values, tombstone] of byKind) {
        if (!values.length) continue;
        const list = JSON.stringify(values);
        ops.push({
          table,
          kind: "pseudonymised",
          count: d1.prepare(`SELECT count(*) AS n FROM "${table}" WHERE ${inList(column)}`).bind(list),
          apply: d1.prepare(`UPDATE "${table}" SET "${column}" = ? WHERE ${inList(column)}`).bind(tombstone, list),
        });
      }
    }
    for (const column of t.rewrite ?? []) {
      for (const group of replacements(who)) {
        const where = group.map(() => `instr("${column}", ?) > 0`).join(" OR ");
        const expression = group.reduce((inner) => `replace(${inner}, ?, ?)`, `"${column}"`);
        const found = group.map(([from]) => from);
        ops.push({
          table,
          kind: "pseudonymised",
          count: d1.prepare(`SELECT count(*) AS n FROM "${table}" WHERE ${where}`).bind(...found),
          apply: d1.prepare(`UPDATE "${table}" SET "${column}" = ${expression} WHERE ${where}`).bind(...group.flat(), ...found),
        });
      }
    }
  }
  return ops;
}

export const controlOperations = (d1: D1Database, who: Person, eventIds: string[]) => personOperations(d1, CONTROL_TABLES, who, eventIds);
export const tenantOperations = (d1: D1Database, who: Person, eventIds: string[]) => personOperations(d1, TENANT_TABLES, who, eventIds);

/** Counts each operation's rows (before anything changes), summed by table and kind. */
export async function countOperations(d1: D1Database, ops: Operation[]): Promise<Record<string, { deleted: number; pseudonymised: number }>> {
  const counts: Record<string, { deleted: number; pseudonymised: number }> = {};
  if (!ops.length) return counts;
  const results = await d1.batch<{ n: number }>(ops.map((o) => o.count));
  ops.forEach((op, i) => {
    const entry = counts[op.table] ?? { deleted: 0, pseudonymised: 0 };
    entry[op.kind] += results[i]!.results[0]?.n ?? 0;
    counts[op.table] = entry;
  });
  return counts;
}
