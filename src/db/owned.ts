import { and, desc, eq, lt, type SQL, sql } from "drizzle-orm";
import type { SQLiteColumn, SQLiteTable } from "drizzle-orm/sqlite-core";
import type { Context } from "hono";
import { reachableProjects, reaches, withinReach } from "../auth/reach";
import type { AppEnv } from "../context";
import { ApiError } from "../lib/errors";
import { decodeCursor, page } from "../lib/pagination";
import type { ControlDb, TenantDb } from "./router";

/** A tenant table whose rows have a prefixed id (`prj_…`) and a `tenant_id`. */
export type OwnedTable = SQLiteTable & { id: SQLiteColumn; tenantId: SQLiteColumn };

/** A tenant table whose rows live in a project. */
export type ProjectTable = OwnedTable & { projectId: SQLiteColumn };

/** The point read by id and tenant, built once per database and table (drizzle builds SQL anew for every unprepared query). */
function pointRead(db: TenantDb, table: OwnedTable) {
  let byTable = prepared.get(db);
  if (!byTable) {
    byTable = new Map();
    prepared.set(db, byTable);
  }
  let query = byTable.get(table);
  if (!query) {
    query = db
      .select()
      .from(table)
      .where(and(eq(table.id, sql.placeholder("id")), eq(table.tenantId, sql.placeholder("tenantId"))))
      .prepare();
    byTable.set(table, query);
  }
  return query;
}
const prepared = new WeakMap<TenantDb, Map<OwnedTable, { get(params: { id: string; tenantId: string }): Promise<unknown> }>>();

/** The row `id` of this tenant in `table`, or `404 NOT_FOUND` ("No {noun} {id}"): another tenant's row is not found either. */
export async function findOwned<T extends OwnedTable>(db: TenantDb, table: T, tenantId: string, id: string, noun: string): Promise<T["$inferSelect"]> {
  const row = await pointRead(db, table).get({ id, tenantId });
  if (!row) throw new ApiError("NOT_FOUND", `No ${noun} ${id}`);
  return row as T["$inferSelect"];
}

/**
 * One page of this tenant's rows in `table`, newest first (ids sort by time), narrowed by
 * `filters`; `cursor` is the `next_cursor` of the page before (an id with `prefix`). In the
 * tenant's database or the control database (API keys, invitations, the credit ledger).
 */
export async function listOwned<T extends OwnedTable, U>(
  db: TenantDb | ControlDb,
  table: T,
  tenantId: string,
  q: { limit: number; cursor?: string; prefix: string; filters?: (SQL | undefined)[] },
  render: (row: T["$inferSelect"]) => U,
) {
  const rows = (await (db as TenantDb)
    .select()
    .from(table as OwnedTable)
    .where(and(eq(table.tenantId, tenantId), ...(q.filters ?? []), q.cursor ? lt(table.id, decodeCursor(q.cursor, q.prefix)) : undefined))
    .orderBy(desc(table.id))
    .limit(q.limit + 1)) as (T["$inferSelect"] & { id: string })[];
  return page(rows, q.limit, render);
}

/** The row `id` of this tenant in a project the caller reaches, or `404 NOT_FOUND`: a project they are not assigned to hides its rows as another tenant's are hidden. */
export async function findReachable<T extends ProjectTable>(c: Context<AppEnv>, table: T, id: string, noun: string): Promise<T["$inferSelect"]> {
  const row = await findOwned(c.var.db, table, c.var.tenant.id, id, noun);
  if (!reaches(c, (row as { projectId: string }).projectId)) throw new ApiError("NOT_FOUND", `No ${noun} ${id}`);
  return row;
}

/**
 * Proves the caller reaches the project of row `id` before a read that goes by the row's id alone
 * (its revisions, comments, versions): free for a caller who reaches every project, a point read
 * otherwise, and `404` as `findReachable`.
 */
export async function assertReachable(c: Context<AppEnv>, table: ProjectTable, id: string, noun: string): Promise<void> {
  if (reachableProjects(c) !== null) await findReachable(c, table, id, noun);
}

/** One page of this tenant's rows in `table` from the projects the caller reaches (see `listOwned`). */
export function listReachable<T extends ProjectTable, U>(
  c: Context<AppEnv>,
  table: T,
  q: { limit: number; cursor?: string; prefix: string; filters?: (SQL | undefined)[] },
  render: (row: T["$inferSelect"]) => U,
) {
  return listOwned(c.var.db, table, c.var.tenant.id, { ...q, filters: [...(q.filters ?? []), withinReach(c, table.projectId)] }, render);
}
