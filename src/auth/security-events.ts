import { and, eq, lt } from "drizzle-orm";
import { securityEvents } from "../db/control/schema";
import type { ControlDb } from "../db/router";
import { newId } from "../lib/ids";

export type SecurityEventKind = (typeof securityEvents.$inferInsert)["kind"];

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
