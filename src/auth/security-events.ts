import { and, desc, eq, lt } from "drizzle-orm";
import { securityEvents, tenants } from "../db/control/schema";
import type { ControlDb } from "../db/router";
import { newId } from "../lib/ids";
import { decodeCursor, page } from "../lib/pagination";

/** The kinds of security event, as the table declares them. */
export const SECURITY_EVENT_KINDS = securityEvents.kind.enumValues;
export type SecurityEventKind = (typeof SECURITY_EVENT_KINDS)[number];

/** How long an account's security events are kept. */
export const SECURITY_EVENT_RETENTION_DAYS = 90;

/**
 * Records something that happened to an account, for its owner to see in `GET /v1/me/security-events`
 * whichever tenant it happened in; the account's events past retention go in the same batch.
 */
export async function recordSecurityEvent(db: ControlDb, event: { userId: string; tenantId: string; kind: SecurityEventKind; clientAddress?: string }): Promise<void> {
  const cutoff = new Date(Date.now() - SECURITY_EVENT_RETENTION_DAYS * 86_400_000).toISOString();
  await db.batch([
    db.delete(securityEvents).where(and(eq(securityEvents.userId, event.userId), lt(securityEvents.createdAt, cutoff))),
    db.insert(securityEvents).values({ id: newId("sev"), userId: event.userId, tenantId: event.tenantId, kind: event.kind, clientAddress: event.clientAddress ?? null }),
  ]);
}

/** A page of an account's security events, newest first, naming the tenant each happened in. */
export async function listSecurityEvents(db: ControlDb, userId: string, limit: number, cursor: string | undefined) {
  const rows = await db
    .select({ id: securityEvents.id, kind: securityEvents.kind, tenantId: securityEvents.tenantId, slug: tenants.slug, clientAddress: securityEvents.clientAddress, createdAt: securityEvents.createdAt })
    .from(securityEvents)
    .leftJoin(tenants, eq(tenants.id, securityEvents.tenantId))
    .where(and(eq(securityEvents.userId, userId), cursor ? lt(securityEvents.id, decodeCursor(cursor, "sev")) : undefined))
    .orderBy(desc(securityEvents.id))
    .limit(limit + 1);
  return page(rows, limit, (e) => ({ id: e.id, kind: e.kind, tenant: { id: e.tenantId, slug: e.slug }, client_address: e.clientAddress, created_at: e.createdAt }));
}
