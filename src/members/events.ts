import { and, asc, eq, isNull, lt, type SQL, sql } from "drizzle-orm";
import type { Context } from "hono";
import type { AppEnv } from "../context";
import { controlOutbox } from "../db/control/schema";
import { tenantById } from "../db/directory";
import { insertWhere } from "../db/insert-where";
import type { EventType } from "../db/outbox";
import { type ControlDb, controlDb, tenantBinding, tenantDb } from "../db/router";
import { outbox } from "../db/tenant/schema";
import type { Env } from "../env";
import { newId } from "../lib/ids";
import { createLogger, errorFields } from "../lib/log";

/**
 * Membership events. Memberships live in the control database and a tenant's outbox in the
 * tenant's own, so no one transaction holds both: a membership change writes its event to the
 * control database's outbox in the batch that makes the change (both land or neither), and
 * `relayMemberEvents` copies it, under the same id, into the tenant's outbox, where webhooks
 * dispatch it like any other event. The copy ignores an id already there, so relaying twice (the
 * request's relay and the cron's, racing) writes once.
 */

export type MemberEventType = Extract<EventType, `member.${string}`>;

export interface MemberEventData {
  user_id: string;
  email: string;
  name: string;
  role: string;
  previous_role?: string;
  projects: readonly string[] | null;
  previous_projects?: readonly string[] | null;
  joined_at: string;
}

/** Events relayed per pass. */
const RELAY_BATCH = 100;
/** Relayed events stay this long in the control outbox. */
const RELAYED_KEPT_MS = 7 * 24 * 3600 * 1000;

/**
 * The statement writing a membership event into the control outbox, placed in the change's batch
 * right after the changing statement: it writes only if `condition` (by default, that the statement
 * before it changed a row) holds.
 */
export function memberEvent(db: ControlDb, tenantId: string, type: MemberEventType, data: MemberEventData, condition: SQL = sql`changes() > 0`) {
  return insertWhere(db, controlOutbox, { id: newId("evt"), tenantId, type, subjectType: "member", subjectId: data.user_id, data: JSON.stringify(data) }, condition);
}

/**
 * Copies the tenant's unrelayed membership events into its own outbox (one statement, from a JSON
 * array) and marks them relayed (one more). Answers how many it relayed. Called right after a
 * membership change, and by the cron sweep for any that call missed.
 */
export async function relayMemberEvents(env: Env, tenant: { id: string; dbBinding: string }): Promise<number> {
  const control = controlDb(env);
  const rows = await control
    .select()
    .from(controlOutbox)
    .where(and(eq(controlOutbox.tenantId, tenant.id), isNull(controlOutbox.relayedAt)))
    .orderBy(asc(controlOutbox.id))
    .limit(RELAY_BATCH);
  if (!rows.length) return 0;
  const list = JSON.stringify(rows.map((r) => [r.id, r.type, r.subjectType, r.subjectId, r.data, r.createdAt]));
  const col = (i: number) => sql`json_extract(j.value, ${`$[${i}]`})`;
  const db = tenantDb(env, tenant);
  await insertWhere(db, outbox, { id: col(0), tenantId: tenant.id, type: col(1), subjectType: col(2), subjectId: col(3), data: col(4), createdAt: col(5) }, sql`1`, sql`json_each(${list}) j`)
    .onConflictDoNothing()
    .run();
  const ids = JSON.stringify(rows.map((r) => r.id));
  await control
    .update(controlOutbox)
    .set({ relayedAt: new Date().toISOString() })
    .where(and(eq(controlOutbox.tenantId, tenant.id), sql`${controlOutbox.id} IN (SELECT value FROM json_each(${ids}))`))
    .run();
  return rows.length;
}

/** Relays right after a membership change; a failure is logged and left to the cron sweep. */
export async function relayAfterChange(c: Context<AppEnv>): Promise<void> {
  await relayMemberEvents(c.env, c.var.tenant).catch((err) => c.var.log.error("members.relay_failed", errorFields(err)));
}

/**
 * The cron sweep's part: relays what no request relayed, for every tenant that has any, and drops
 * relayed events past their week.
 */
export async function sweepMemberEvents(env: Env, now = Date.now()): Promise<number> {
  const log = createLogger({ component: "members" });
  const control = controlDb(env);
  const waiting = await control.selectDistinct({ tenantId: controlOutbox.tenantId }).from(controlOutbox).where(isNull(controlOutbox.relayedAt)).limit(RELAY_BATCH);
  let relayed = 0;
  for (const { tenantId } of waiting) {
    try {
      const tenant = await tenantById(env, tenantId);
      // Another shard's tenant is relayed by that shard's cron (its database is bound there).
      if (tenant && tenantBinding(env, tenant.dbBinding)) relayed += await relayMemberEvents(env, tenant);
    } catch (err) {
      log.error("members.relay_failed", { ...errorFields(err), tenant_id: tenantId });
    }
  }
  await control
    .delete(controlOutbox)
    .where(and(lt(controlOutbox.createdAt, new Date(now - RELAYED_KEPT_MS).toISOString()), sql`${controlOutbox.relayedAt} IS NOT NULL`))
    .run();
  return relayed;
}
