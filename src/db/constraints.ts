import { getTableColumns, getTableName } from "drizzle-orm";
import type { SQLiteColumn, SQLiteTable } from "drizzle-orm/sqlite-core";
import { errorText } from "../lib/errors";

/**
 * Whether `err` is SQLite refusing a write because it would duplicate a unique key of `table` —
 * on exactly `columns` when given (in index order), on any of its unique keys otherwise. The one
 * place that reads D1's error text for this ("UNIQUE constraint failed: t.a, t.b"), which is all a
 * D1 error offers.
 */
export function isUniqueViolation<T extends SQLiteTable>(err: unknown, table: T, columns?: (keyof T["_"]["columns"] & string)[]): boolean {
  return violated(err, "UNIQUE", table, columns);
}

/** Whether `err` is SQLite refusing a NULL in `column` of `table`. */
export function isNotNullViolation<T extends SQLiteTable>(err: unknown, table: T, column: keyof T["_"]["columns"] & string): boolean {
  return violated(err, "NOT NULL", table, [column]);
}

function violated(err: unknown, kind: "UNIQUE" | "NOT NULL", table: SQLiteTable, columns?: string[]): boolean {
  const match = new RegExp(`${kind} constraint failed: ([\\w., ]+)`).exec(errorText(err));
  if (!match) return false;
  const name = getTableName(table);
  const failed = match[1]!.split(",").map((s) => s.trim());
  if (!failed.every((f) => f.startsWith(`${name}.`))) return false;
  if (!columns) return true;
  const all = getTableColumns(table) as Record<string, SQLiteColumn>;
  const expected = columns.map((key) => `${name}.${columnName(all[key]!)}`);
  return expected.length === failed.length && expected.every((e, i) => e === failed[i]);
}

/** A column's name in the database: the schemas name columns by key and let the snake_case casing name them. */
const columnName = (column: SQLiteColumn) => (column.keyAsName ? column.name.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`) : column.name);
