import { and, eq, isNull } from "drizzle-orm";
import { CLOSE_CODES } from "../../durable-objects/conversation-protocol";
import type { Principal } from "../context";
import { closeSockets } from "../conversations/sockets";
import { apiKeys } from "../db/control/schema";
import { controlDb } from "../db/router";
import type { Env } from "../env";
import { forgetCachedApiKeys } from "./api-keys";
import { currentRole, forgetMembership } from "./membership";

/**
 * After a write that ended or narrowed someone's access (a removal, a demotion, a revoked key):
 * this isolate forgets what it remembered of their keys and role, and their open sockets close
 * at once (4401), so they reconnect — or not — with what they hold now. Other isolates follow
 * within their 10-second memory for reads; writes everywhere read the membership fresh.
 */
export async function revokeLiveAccess(env: Env, tenant: { id: string; dbBinding: string }, who: { userId?: string; apiKeyId?: string }, reason: string): Promise<void> {
  forgetCachedApiKeys();
  if (who.userId) forgetMembership(tenant.id, who.userId);
  await closeSockets(env, tenant, who, CLOSE_CODES.credential, reason);
}

/**
 * Whether a credential still stands exactly as it was authenticated, read now: its key unrevoked
 * and its holder a member with the same role. A connection checks this once it is open, so an
 * access change that landed between the request's check and the room accepting the socket (and so
 * found no socket to close) still closes it.
 */
export async function unchangedSince(env: Env, tenantId: string, principal: Principal): Promise<boolean> {
  const db = controlDb(env);
  if (principal.kind === "api_key") {
    const key = await db.select({ role: apiKeys.role }).from(apiKeys).where(and(eq(apiKeys.id, principal.keyId), isNull(apiKeys.revokedAt))).get();
    return key?.role === principal.role;
  }
  return (await currentRole(db, tenantId, principal.userId, { fresh: true })) === principal.role;
}
