import { and, eq, sql } from "drizzle-orm";
import type { TenantDb } from "../db/router";
import { conversations } from "../db/tenant/schema";

/** Brings the conversation's row up to its room's log: message count and last activity, never backwards (writes may land out of order). */
export function touchConversation(db: TenantDb, c: { tenantId: string; conversationId: string }, lastSeq: number, at: Date) {
  return db
    .update(conversations)
    .set({
      messageCount: sql`MAX(${conversations.messageCount}, ${lastSeq})`,
      lastActivityAt: sql`MAX(COALESCE(${conversations.lastActivityAt}, ''), ${at.toISOString()})`,
    })
    .where(and(eq(conversations.tenantId, c.tenantId), eq(conversations.id, c.conversationId)));
}
