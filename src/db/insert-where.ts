import { getTableColumns, is, SQL, sql } from "drizzle-orm";
import type { BaseSQLiteDatabase, SQLiteTable } from "drizzle-orm/sqlite-core";

/** A row to insert, where any value may also be an SQL expression evaluated by the insert. */
export type RowOf<T extends SQLiteTable> = { [K in keyof T["$inferInsert"]]: T["$inferInsert"][K] | SQL };

/**
 * `INSERT INTO table SELECT <row> [FROM from] WHERE condition`: inserts `row` only if `condition`
 * holds when the statement runs (a guard on an earlier statement of the same batch, such as
 * `changes() > 0`, or a limit counted inside the insert). With `from`, values may read its columns
 * (the version a parent row just took, the role of a membership).
 *
 * The row is an object typed by the table, and the SELECT list is built in the table's column
 * order, filling omitted columns with their declared defaults: a new required column is a type
 * error here, and reordering columns cannot shift values into the wrong ones (as a hand-written
 * `SELECT ${a}, ${b}…` would). Returns the insert builder, so `onConflict…` and `returning` chain on.
 */
// biome-ignore lint/suspicious/noExplicitAny: any drizzle SQLite database (the D1 one for each schema) builds the insert.
export function insertWhere<T extends SQLiteTable>(db: BaseSQLiteDatabase<"async", any, any>, table: T, row: RowOf<T>, condition: SQL, from?: SQL) {
  const values = Object.entries(getTableColumns(table))
    .map(([key, column]) => {
      const given = (row as Record<string, unknown>)[key];
      if (given !== undefined) return is(given, SQL) ? given : sql.param(given, column);
      if (column.default !== undefined) return is(column.default, SQL) ? column.default : sql.param(column.default, column);
      if (column.defaultFn) {
        const made = column.defaultFn();
        return is(made, SQL) ? made : sql.param(made, column);
      }
      return sql`NULL`;
    });
  return db.insert(table).select(sql`SELECT ${sql.join(values, sql`, `)} ${from ? sql`FROM ${from} ` : sql``}WHERE ${condition}`);
}

/**
 * `insertWhere` under a limit: the row goes in only while fewer than `max` rows of `table` match
 * `scope` (a tenant's, a project's, a post's…), counted inside the insert so concurrent inserts
 * cannot pass the limit together. Nothing is inserted (the answer's `returning` is empty) at the limit,
 * or when `when` (a further condition of the caller's) does not hold.
 */
// biome-ignore lint/suspicious/noExplicitAny: any drizzle SQLite database (the D1 one for each schema) builds the insert.
export function insertWithin<T extends SQLiteTable>(db: BaseSQLiteDatabase<"async", any, any>, table: T, row: RowOf<T>, scope: SQL | undefined, max: number, when?: SQL) {
  const under = sql`(SELECT count(*) FROM ${table} WHERE ${scope}) < ${max}`;
  return insertWhere(db, table, row, when ? sql`${under} AND ${when}` : under);
}
