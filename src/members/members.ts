import { and, asc, eq, gt, inArray, isNull, ne, or, sql } from "drizzle-orm";
import type { Context } from "hono";
import { assertMayAssign, holdsRole, rolesThatGrant, stillGrants } from "../auth/membership";
import { ROLE_RANK, ROLES, type Role } from "../auth/permissions";
import { revokeLiveAccess } from "../auth/revocation";
import { revokeMemberSessions } from "../auth/sessions";
import type { AppEnv, Principal } from "../context";
import { recordAudit } from "../db/audit";
import { apiKeys, memberships, users } from "../db/control/schema";
import { type ControlDb, controlDb } from "../db/router";
import { ApiError } from "../lib/errors";
import { decodeCursor, page } from "../lib/pagination";
import { memberEvent, relayAfterChange } from "./events";

/** A member as the API shows one. */
export interface Member {
  userId: string;
  email: string;
  name: string;
  role: Role;
  joinedAt: string;
}

/**
 * The condition, checked inside the write, that the acting member still may manage `roles`:
 * still an owner or admin now (an owner, when an owner is involved), whatever their token said.
 */
function actorStillManages(tenantId: string, actor: Principal, roles: Role[]) {
  return holdsRole(tenantId, actor.userId, rolesThatGrant(roles, "members:write"));
}

/** Why a guarded write changed nothing: the actor lost the right meanwhile (403), or else `otherwise`. */
async function refusal(db: ControlDb, tenantId: string, actor: Principal, otherwise: ApiError): Promise<ApiError> {
  return (await stillGrants(db, tenantId, actor.userId, "members:write")) ? otherwise : new ApiError("FORBIDDEN", "Your current role does not allow managing members");
}

async function findMember(db: ControlDb, tenantId: string, userId: string) {
  const row = await db
    .select({ userId: users.id, email: users.email, name: users.name, role: memberships.role, joinedAt: memberships.createdAt })
    .from(memberships)
    .innerJoin(users, eq(users.id, memberships.userId))
    .where(and(eq(memberships.tenantId, tenantId), eq(memberships.userId, userId)))
    .get();
  if (!row) throw new ApiError("NOT_FOUND", `No member ${userId} in this tenant`);
  return row;
}

const eventData = (m: Member) => ({ user_id: m.userId, email: m.email, name: m.name, role: m.role, joined_at: m.joinedAt });

// The last-owner guard lives in the statement itself, so two owners demoting each other at once cannot both succeed.
const notLastOwner = (tenantId: string) =>
  or(ne(memberships.role, "owner"), sql`(SELECT count(*) FROM memberships WHERE tenant_id = ${tenantId} AND role = 'owner') > 1`);

/** The tenant's members, by user id. */
export async function listMembers(c: Context<AppEnv>, { limit, cursor }: { limit: number; cursor?: string }) {
  const tenantId = c.var.tenant.id;
  const rows = await controlDb(c.env)
    .select({ id: users.id, userId: users.id, email: users.email, name: users.name, role: memberships.role, joinedAt: memberships.createdAt })
    .from(memberships)
    .innerJoin(users, eq(users.id, memberships.userId))
    .where(and(eq(memberships.tenantId, tenantId), cursor ? gt(memberships.userId, decodeCursor(cursor, "usr")) : undefined))
    .orderBy(asc(memberships.userId))
    .limit(limit + 1);
  return page(rows, limit, (m) => m);
}

/**
 * Changes a member's role (and lowers the ceiling of their API keys with it). The last-owner guard
 * and the actor's right to manage both roles are conditions of the write itself.
 */
export async function updateMember(c: Context<AppEnv>, userId: string, role: Role): Promise<Member> {
  const tenantId = c.var.tenant.id;
  const db = controlDb(c.env);
  const member = await findMember(db, tenantId, userId);
  assertMayAssign(c.var.principal, member.role);
  assertMayAssign(c.var.principal, role);
  if (member.role === role) return member;

  const demotedAbove = ROLES.filter((r) => ROLE_RANK[r] > ROLE_RANK[role]);
  const [updated] = await db.batch([
    db
      .update(memberships)
      .set({ role })
      .where(and(eq(memberships.tenantId, tenantId), eq(memberships.userId, userId), notLastOwner(tenantId), actorStillManages(tenantId, c.var.principal, [member.role, role])))
      .returning(),
    memberEvent(db, tenantId, "member.role_changed", { ...eventData(member), role, previous_role: member.role }),
    // A key never exceeds its creator's role: a demotion lowers the ceiling of their keys too.
    db
      .update(apiKeys)
      .set({ role })
      .where(
        and(
          eq(apiKeys.tenantId, tenantId),
          eq(apiKeys.createdBy, userId),
          inArray(apiKeys.role, demotedAbove),
          isNull(apiKeys.revokedAt),
          // Only if the role change above happened (the last-owner guard may have refused it).
          sql`EXISTS (SELECT 1 FROM memberships WHERE tenant_id = ${tenantId} AND user_id = ${userId} AND role = ${role})`,
        ),
      ),
  ]);
  if (!updated.length) throw await refusal(db, tenantId, c.var.principal, new ApiError("LAST_OWNER", "This is the tenant's last owner; make another member owner first"));
  await relayAfterChange(c);
  await revokeLiveAccess(c.env, c.var.tenant, { userId }, "role changed; reconnect to continue with the new role");
  await recordAudit(c, { action: "member.role_changed", resourceType: "member", resourceId: userId, details: { from: member.role, to: role } });
  return { ...member, role };
}

/** Removes a member: their sessions end, their keys are revoked and their sockets closed, at once. */
export async function removeMember(c: Context<AppEnv>, userId: string): Promise<void> {
  const tenantId = c.var.tenant.id;
  const db = controlDb(c.env);
  const member = await findMember(db, tenantId, userId);
  assertMayAssign(c.var.principal, member.role);
  const now = new Date();
  // Sessions and keys end only if the delete happened (the last-owner guard may refuse it).
  const gone = sql`NOT EXISTS (SELECT 1 FROM memberships WHERE tenant_id = ${tenantId} AND user_id = ${userId})`;
  const [deleted] = await db.batch([
    db
      .delete(memberships)
      .where(and(eq(memberships.tenantId, tenantId), eq(memberships.userId, userId), notLastOwner(tenantId), actorStillManages(tenantId, c.var.principal, [member.role])))
      .returning(),
    memberEvent(db, tenantId, "member.removed", eventData(member)),
    revokeMemberSessions(db, tenantId, userId, "membership_ended", now, gone),
    db
      .update(apiKeys)
      .set({ revokedAt: now.toISOString() })
      .where(and(eq(apiKeys.tenantId, tenantId), eq(apiKeys.createdBy, userId), isNull(apiKeys.revokedAt), gone)),
  ]);
  if (!deleted.length) throw await refusal(db, tenantId, c.var.principal, new ApiError("LAST_OWNER", "This is the tenant's last owner; it cannot be removed"));
  await relayAfterChange(c);
  await revokeLiveAccess(c.env, c.var.tenant, { userId }, "membership ended");
  await recordAudit(c, { action: "member.removed", resourceType: "member", resourceId: userId, details: { role: member.role } });

}
