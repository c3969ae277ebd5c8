import { and, asc, count, desc, eq, gt, gte, lt, type SQL, sql } from "drizzle-orm";
import type { Context } from "hono";
import type { AppEnv } from "../context";
import { listOwned } from "../db/owned";
import { auditLog } from "../db/tenant/schema";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";

/**
 * Reading the audit log: a page of it, a streamed export of any size in constant memory (CSV or
 * NDJSON), and counts by action, actor and day.
 */

export type AuditRow = typeof auditLog.$inferSelect;

export interface AuditFilter {
  action?: string;
  actor_id?: string;
  resource_id?: string;
  /** Inclusive lower bound on `created_at` (an ISO time). */
  from?: string;
  /** Exclusive upper bound on `created_at`. */
  to?: string;
}

/** Rows read per round trip while exporting: what the export holds in memory at once. */
export const EXPORT_PAGE = 500;
/** The longest span the stats answer, in days (the default retention of audit entries). */
export const MAX_STATS_DAYS = 400;
/** The most actions and actors the stats list (the busiest first). */
export const MAX_STATS_GROUPS = 100;

/** The smallest id an entry made at `iso` can have (ids begin with their time), so a time range seeks the tenant's id index. */
const idAt = (ms: number) => `${newId("aud", ms).slice(0, 14)}${"0".repeat(16)}`;

/** The filter's conditions: equality on the named columns and the time range (as an id range, and exactly on `created_at`). */
function conditions(f: AuditFilter): (SQL | undefined)[] {
  if (f.from && f.to && f.from >= f.to) throw new ApiError("VALIDATION_FAILED", "`from` must be before `to`", { errors: [{ in: "query", field: "to", message: "not after from" }] });
  return [
    f.action ? eq(auditLog.action, f.action) : undefined,
    f.actor_id ? eq(auditLog.actorId, f.actor_id) : undefined,
    f.resource_id ? eq(auditLog.resourceId, f.resource_id) : undefined,
    // An id's time and its row's created_at are read a moment apart: the id range is a second wider, created_at exact.
    f.from ? and(gte(auditLog.id, idAt(Date.parse(f.from) - 1000)), gte(auditLog.createdAt, normal(f.from))) : undefined,
    f.to ? and(lt(auditLog.id, idAt(Date.parse(f.to) + 1000)), lt(auditLog.createdAt, normal(f.to))) : undefined,
  ];
}

/** A time as stored (UTC, milliseconds, `Z`), whatever offset it was given with. */
const normal = (iso: string) => new Date(iso).toISOString();

/** An entry as the API shows it. */
export const renderEntry = (r: AuditRow) => ({
  id: r.id,
  action: r.action,
  actor: { type: r.actorType, id: r.actorId },
  resource: { type: r.resourceType, id: r.resourceId },
  request_id: r.requestId,
  details: r.details ? (JSON.parse(r.details) as Record<string, unknown>) : null,
  created_at: r.createdAt,
});

/** One page of the log, newest first. */
export function listEntries(c: Context<AppEnv>, q: AuditFilter & { limit: number; cursor?: string }) {
  return listOwned(c.var.db, auditLog, c.var.tenant.id, { limit: q.limit, cursor: q.cursor, prefix: "aud", filters: conditions(q) }, renderEntry);
}

export type ExportFormat = "csv" | "ndjson";

const CSV_COLUMNS = ["id", "created_at", "action", "actor_type", "actor_id", "resource_type", "resource_id", "request_id", "details"] as const;

/**
 * One CSV cell: RFC 4180 quoting (a cell with a comma, a quote or a line break is quoted, its
 * quotes doubled), and a cell a spreadsheet would run as a formula (starting with `=`, `+`, `-`,
 * `@`, a tab or a carriage return) prefixed with `'` so it is shown as text.
 */
export function csvCell(value: string | null): string {
  if (value === null) return "";
  const text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

const csvLine = (r: AuditRow) => `${[r.id, r.createdAt, r.action, r.actorType, r.actorId, r.resourceType, r.resourceId, r.requestId, r.details].map(csvCell).join(",")}\r\n`;
const ndjsonLine = (r: AuditRow) => `${JSON.stringify(renderEntry(r))}\n`;

/**
 * The log as a stream, oldest first: a page of EXPORT_PAGE rows is read only when the reader has
 * taken the one before, so a log of any size goes out in constant memory (and a reader that goes
 * away stops the reading).
 */
export function exportEntries(c: Context<AppEnv>, format: ExportFormat, filter: AuditFilter): ReadableStream<Uint8Array> {
  const where = conditions(filter);
  const { db, tenant } = c.var;
  const encoder = new TextEncoder();
  const line = format === "csv" ? csvLine : ndjsonLine;
  let after: string | null = null;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        if (format === "csv") controller.enqueue(encoder.encode(`${CSV_COLUMNS.join(",")}\r\n`));
      },
      async pull(controller) {
        const rows = await db
          .select()
          .from(auditLog)
          .where(and(eq(auditLog.tenantId, tenant.id), ...where, after ? gt(auditLog.id, after) : undefined))
          .orderBy(asc(auditLog.id))
          .limit(EXPORT_PAGE);
        if (rows.length) controller.enqueue(encoder.encode(rows.map(line).join("")));
        if (rows.length < EXPORT_PAGE) controller.close();
        else after = rows[rows.length - 1]!.id;
      },
    },
    { highWaterMark: 0 },
  );
}

/** Counts of the entries in a span (at most MAX_STATS_DAYS days): in all, by action, by actor and by day. */
export async function entryStats(c: Context<AppEnv>, q: { from?: string; to?: string }) {
  const to = q.to ? normal(q.to) : new Date().toISOString();
  const from = q.from ? normal(q.from) : new Date(Date.parse(to) - 30 * 86_400_000).toISOString();
  if (Date.parse(to) - Date.parse(from) > MAX_STATS_DAYS * 86_400_000) {
    throw new ApiError("VALIDATION_FAILED", `Stats span at most ${MAX_STATS_DAYS} days`, { errors: [{ in: "query", field: "from", message: `more than ${MAX_STATS_DAYS} days before to` }] });
  }
  const where = and(eq(auditLog.tenantId, c.var.tenant.id), ...conditions({ from, to }));
  const n = count();
  const day = sql<string>`substr(${auditLog.createdAt}, 1, 10)`;
  const db = c.var.db;
  const [total, byAction, byActor, byDay] = await db.batch([
    db.select({ n }).from(auditLog).where(where),
    db.select({ action: auditLog.action, n }).from(auditLog).where(where).groupBy(auditLog.action).orderBy(desc(n), asc(auditLog.action)).limit(MAX_STATS_GROUPS),
    db
      .select({ type: auditLog.actorType, id: auditLog.actorId, n })
      .from(auditLog)
      .where(where)
      .groupBy(auditLog.actorType, auditLog.actorId)
      .orderBy(desc(n), asc(auditLog.actorId))
      .limit(MAX_STATS_GROUPS),
    db.select({ day, n }).from(auditLog).where(where).groupBy(day).orderBy(asc(day)),
  ]);
  return {
    from,
    to,
    total: total[0]?.n ?? 0,
    by_action: byAction.map((r) => ({ action: r.action, count: r.n })),
    by_actor: byActor.map((r) => ({ type: r.type, id: r.id, count: r.n })),
    by_day: byDay.map((r) => ({ day: r.day, count: r.n })),
  };
}
