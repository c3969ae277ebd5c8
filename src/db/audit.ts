import { insertWhere } from "./insert-where";
import { type SQL, sql } from "drizzle-orm";
import type { Context } from "hono";
import type { AppEnv, Principal } from "../context";
import { errorFields } from "../lib/log";
import type { TenantRecord } from "./directory";
import { tenantDb } from "./router";
import { newId } from "../lib/ids";
import type { TenantDb } from "./router";
import { auditLog } from "./tenant/schema";

/** Who made a change: a member, an API key (on behalf of its creator), or the platform operator. */
export type Actor = { type: "user"; id: string } | { type: "api_key"; id: string; onBehalfOf: string } | { type: "guest"; id: string; name: string } | { type: "platform" };

/** What changed: `project.created`, `member.role_changed`, … and the object it changed. */
export interface AuditEntry {
  action: string;
  resourceType: string;
  resourceId?: string;
  details?: Record<string, unknown>;
}

/** The actor behind a request's credential. */
export function actorOf(principal: Principal): Actor {
  if (principal.kind === "api_key") return { type: "api_key", id: principal.keyId, onBehalfOf: principal.userId };
  if (principal.kind === "guest") return { type: "guest", id: principal.linkId, name: principal.name };
  return { type: "user", id: principal.userId };
}

function auditRow(tenantId: string, actor: Actor, requestId: string, entry: AuditEntry) {
  const details = actor.type === "api_key" ? { ...entry.details, on_behalf_of: actor.onBehalfOf } : actor.type === "guest" ? { ...entry.details, guest_name: actor.name } : entry.details;
  return {
    id: newId("aud"),
    tenantId,
    actorType: actor.type,
    actorId: actor.type === "platform" ? null : actor.id,
    action: entry.action,
    resourceType: entry.resourceType,
    resourceId: entry.resourceId ?? null,
    requestId,
    details: details && Object.keys(details).length ? JSON.stringify(details) : null,
  };
}

/** The insert that records one entry: on its own, or in a batch only where `condition` holds when it runs. */
export function auditInsert(db: TenantDb, tenantId: string, actor: Actor, requestId: string, entry: AuditEntry, condition?: SQL) {
  const row = auditRow(tenantId, actor, requestId, entry);
  return condition ? insertWhere(db, auditLog, row, condition) : db.insert(auditLog).values(row);
}

/**
 * The audit entry for a change this request makes in its tenant's database, for the change's own
 * batch, right after the changing statement: it writes only if that statement changed a row
 * (SQLite's `changes()`), so an update or delete of nothing leaves no entry, and both land or
 * neither. The tenant, the actor and the request id come from the request.
 */
export function auditChange(c: Context<AppEnv>, entry: AuditEntry) {
  const row = auditRow(c.var.tenant.id, actorOf(c.var.principal), c.var.requestId, entry);
  return insertWhere(c.var.db, auditLog, row, sql`changes() > 0`);
}

/**
 * Records a change made in the control database into the tenant's audit log. The change
 * has happened by now, so a failed audit write is logged loudly rather than undoing it.
 * (Changes to the tenant's own database put `auditInsert` in their batch instead.)
 */
export async function recordAudit(c: Context<AppEnv>, entry: AuditEntry, opts: { tenant?: TenantRecord; actor?: Actor } = {}): Promise<void> {
  const tenant = opts.tenant ?? c.var.tenant;
  const actor = opts.actor ?? actorOf(c.var.principal);
  try {
    await auditInsert(opts.tenant ? tenantDb(c.env, opts.tenant) : c.var.db, tenant.id, actor, c.var.requestId, entry).run();
  } catch (err) {
    c.var.log.error("audit.write_failed", { ...errorFields(err), tenant_id: tenant.id, action: entry.action });
  }
  c.var.log.info(entry.action, { tenant_id: tenant.id, actor_type: actor.type, resource_id: entry.resourceId });
}
