import { and, eq, gt, lt, or } from "drizzle-orm";
import { CLOSE_CODES, IDENTITY_HEADER, type SocketIdentity, type SocketMatch } from "../../durable-objects/conversation-protocol";
import type { ConversationRoom } from "../../durable-objects/conversation-room";
import { unchangedSince } from "../auth/membership";
import type { Principal } from "../context";
import type { Plan } from "../db/plans";
import { tenantDb } from "../db/router";
import { liveSockets } from "../db/tenant/schema";
import type { Env } from "../env";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import type { Limit } from "../limits/rate-limit";
import { objectOf, type Placed } from "../tenants/residency";

type Tenant = { id: string; dbBinding: string } & Placed;

/**
 * The room of one conversation of one tenant, made in the tenant's jurisdiction: the name carries
 * tenant and conversation, so ids never collide across tenants.
 */
export function roomOf(env: Env, tenant: { id: string } & Placed, conversationId: string): DurableObjectStub<ConversationRoom> {
  return objectOf(env, env.CONVERSATION_ROOM, tenant, `${tenant.id}:${conversationId}`);
}

/**
 * Opens a conversation socket for an authenticated upgrade: hands the room the socket's identity
 * (who, what they may do, until when, which limits its posts count under), notes the socket so
 * that ending this credential's access can find the room, and checks the credential once more
 * after the room accepted it. A credential at its socket cap is 429 TOO_MANY_CONNECTIONS.
 */
export async function openSocket(env: Env, tenant: Tenant, plan: Plan, p: Principal, conversationId: string, upgrade: Request, limits: Limit[]): Promise<Response> {
  const identity: SocketIdentity = {
    user_id: p.userId,
    role: p.role,
    credential: p.kind === "api_key" ? "api_key" : "access_token",
    ...(p.kind === "api_key" && { api_key_id: p.keyId }),
    can_post: p.permissions.has("conversations:write"),
    expires_at: p.expiresAt,
    monthly_tokens: plan.monthlyTokens,
    rate_limits: limits,
  };
  const headers = new Headers({ upgrade: "websocket", [IDENTITY_HEADER]: JSON.stringify(identity) });
  const protocols = upgrade.headers.get("sec-websocket-protocol");
  if (protocols) headers.set("sec-websocket-protocol", protocols);
  const apiKeyId = p.kind === "api_key" ? p.keyId : null;
  await recordSocket(env, tenant, { id: newId("sck"), conversationId, userId: p.userId, apiKeyId, expiresAt: p.expiresAt });
  const room = roomOf(env, tenant, conversationId);
  const res = (await room.fetch(new Request(upgrade.url, { headers }))) as unknown as Response;
  if (res.status === 429) {
    const refused = (await res.json()) as { limit: number; retry_after: number };
    throw new ApiError("TOO_MANY_CONNECTIONS", `This credential already holds ${refused.limit} sockets on this conversation; close one first`, {
      headers: { "Retry-After": String(refused.retry_after) },
    });
  }
  // An access change that landed between the request's check and the room accepting found no socket to close.
  if (!(await unchangedSince(env, tenant.id, p))) {
    await room.closeSockets(apiKeyId ? { apiKeyId } : { userId: p.userId }, CLOSE_CODES.credential, "access changed while connecting; reconnect");
  }
  return res;
}

/**
 * Notes a socket about to open, so a later change of access can reach its room; rows whose
 * sockets are past their credential's expiry are pruned in the same batch.
 */
async function recordSocket(env: Env, tenant: Tenant, socket: { id: string; conversationId: string; userId: string; apiKeyId: string | null; expiresAt: number }) {
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
  const closed = await Promise.all(rooms.map((r) => roomOf(env, tenant, r.conversationId).closeSockets(who, code, reason)));
  return closed.reduce((a, b) => a + b, 0);
}
