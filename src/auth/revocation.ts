import { CLOSE_CODES } from "../../durable-objects/conversation-protocol";
import { closeSockets } from "../conversations/sockets";
import type { Env } from "../env";
import type { Placed } from "../tenants/residency";
import { forgetCachedApiKeys } from "./api-keys";
import { forgetMembership } from "./membership";

/**
 * After a write that ended or narrowed someone's access (a removal, a demotion, a revoked key):
 * this isolate forgets what it remembered of their keys and role, and their open sockets close
 * at once (4401), so they reconnect — or not — with what they hold now. Other isolates follow
 * within their 10-second memory for reads; writes everywhere read the membership fresh.
 */
export async function revokeLiveAccess(env: Env, tenant: { id: string; dbBinding: string } & Placed, who: { userId?: string; apiKeyId?: string }, reason: string): Promise<void> {
  forgetCachedApiKeys();
  if (who.userId) forgetMembership(tenant.id, who.userId);
  await closeSockets(env, tenant, who, CLOSE_CODES.credential, reason);
}
