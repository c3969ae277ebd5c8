import { and, eq, gt, lt, or } from "drizzle-orm";
import type { SocketMatch } from "../../durable-objects/conversation-protocol";
import type { ConversationRoom } from "../../durable-objects/conversation-room";
import type { Env } from "../env";
import { tenantDb } from "../db/router";
import { liveSockets } from "../db/tenant/schema";

type Tenant = { id: string; dbBinding: string };

/** The room of one conversation of one tenant: the name carries both, so ids never collide across tenants. */
export function roomOf(env: Env, tenantId: string, conversationId: string): DurableObjectStub<ConversationRoom> {
  const ns = env.CONVERSATION_ROOM;
  return ns.get(ns.idFromName(`${tenantId}:${conversationId}`));
}

/**
 * Notes a socket about to open, so a later change of access can reach its room; rows whose
 * sockets are past their credential's expiry are pruned in the same batch.
 */
export async function recordSocket(env: Env, tenant: Tenant, socket: { id: string; conversationId: string; userId: string; apiKeyId: string | null; expiresAt: number }) {
  const db = tenantDb(env, tenant);
  const now = new Date().toISOString();
  await db.batch([
    db.delete(liveSockets).where(and(eq(liveSockets.tenantId, tenant.id), lt(liveSockets.expiresAt, now))),
    db.insert(liveSockets).values({ ...socket, tenantId: tenant.id, expiresAt: new Date(socket.expiresAt).toISOString() }),
  ]);
}

/**
 * Closes, in every room where they may be listening, the sockets of a member or an API key (or
 * of everyone in the tenant), with `code`. Answers how many sockets were closed.
 */
export async function closeSockets(env: Env, tenant: Tenant, who: SocketMatch, code: number, reason: string): Promise<number> {
  const now = new Date().toISOString();
  const whose = who.everyone ? undefined : or(who.userId ? eq(liveSockets.userId, who.userId) : undefined, who.apiKeyId ? eq(liveSockets.apiKeyId, who.apiKeyId) : undefined);
  const rooms = await tenantDb(env, tenant)
    .selectDistinct({ conversationId: liveSockets.conversationId })
    .from(liveSockets)
    .where(and(eq(liveSockets.tenantId, tenant.id), gt(liveSockets.expiresAt, now), whose));
  const closed = await Promise.all(rooms.map((r) => roomOf(env, tenant.id, r.conversationId).closeSockets(who, code, reason)));
  return closed.reduce((a, b) => a + b, 0);
}
