import { and, eq, isNull, sql } from "drizzle-orm";
import type { Context } from "hono";
import { listOwned } from "../db/owned";
import { startAttempt } from "../auth/attempts";
import { assertMayAssign, currentRole, holdsRole, parseProjects, rolesThatGrant, stillGrants } from "../auth/membership";
import type { Role } from "../auth/permissions";
import { recordSecurityEvent } from "../auth/security-events";
import { discardSession, startSession } from "../auth/sessions";
import type { AppEnv } from "../context";
import { recordAudit } from "../db/audit";
import { isUniqueViolation } from "../db/constraints";
import { invitations, memberships, users } from "../db/control/schema";
import { insertWhere } from "../db/insert-where";
import { controlDb } from "../db/router";
import { hashPassword, randomSecret, sha256Hex, verifyPassword } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { tokenConfig } from "../middleware/auth";
import { clientAddress } from "../middleware/rate-limit";
import { memberEvent, relayAfterChange } from "./events";
import { projectAssignment } from "./members";

const INVITATION_TTL_MS = 7 * 24 * 3600 * 1000;
const TOKEN_PREFIX = "inv_";

/**
 * Invites `email` into the host's tenant as `role`: a seat (members and pending invitations both
 * hold one) and the inviter's right to grant the role are checked inside the insert, so racing
 * invitations cannot both pass and a just-demoted inviter cannot. Answers the one-time token.
 */
export async function createInvitation(c: Context<AppEnv>, { email, role, projects }: { email: string; role: Role; projects?: string[] | null }) {
  const tenantId = c.var.tenant.id;
  assertMayAssign(c.var.principal, role);
  const assigned = await projectAssignment(c, role, projects);
  const db = controlDb(c.env);
  const member = await db
    .select({ userId: memberships.userId })
    .from(memberships)
    .innerJoin(users, eq(users.id, memberships.userId))
    .where(and(eq(memberships.tenantId, tenantId), eq(users.email, email)))
    .get();
  if (member) throw new ApiError("CONFLICT", `${email} is already a member`, { errors: [{ in: "body", field: "email", message: "already a member" }] });
  const token = `${TOKEN_PREFIX}${randomSecret(32)}`;
  const row = {
    id: newId("inv"),
    tenantId,
    email,
    role,
    projects: assigned,
    tokenHash: await sha256Hex(token),
    invitedBy: c.var.principal.userId,
    expiresAt: new Date(Date.now() + INVITATION_TTL_MS).toISOString(),
  };
  const plan = c.var.plan;
  // The inviter must still be allowed to invite (an owner, to invite an owner) when the row is written.
  const actorStillInvites = holdsRole(tenantId, c.var.principal.userId, rolesThatGrant([role], "invitations:write"));
  // Members and pending invitations both hold a seat; the check sits inside the insert so racing invitations cannot both pass.
  const now = new Date().toISOString();
  const seatFree = sql`(SELECT count(*) FROM ${memberships} WHERE ${memberships.tenantId} = ${tenantId})
      + (SELECT count(*) FROM ${invitations} WHERE ${invitations.tenantId} = ${tenantId} AND ${invitations.acceptedAt} IS NULL AND ${invitations.expiresAt} > ${now})
      < ${plan.seats}`;
  const inserted = await insertWhere(db, invitations, { ...row, createdAt: now }, sql`${seatFree} AND ${actorStillInvites}`)
    .returning({ id: invitations.id })
    .get();
  if (!inserted) {
    if (!(await stillGrants(db, tenantId, c.var.principal.userId, "invitations:write"))) throw new ApiError("FORBIDDEN", "Your current role does not allow inviting");
    throw new ApiError("PLAN_LIMIT", `The ${plan.name} plan has ${plan.seats} seats, all taken by members and pending invitations`);
  }
  await recordAudit(c, { action: "invitation.created", resourceType: "invitation", resourceId: row.id, details: { email, role, projects: parseProjects(assigned) } });
  return { id: row.id, email, role, projects: parseProjects(assigned), token, expires_at: row.expiresAt };
}

/** The tenant's pending invitations, newest first. */
export async function listInvitations(c: Context<AppEnv>, { limit, cursor }: { limit: number; cursor?: string }) {
  return listOwned(controlDb(c.env), invitations, c.var.tenant.id, { limit, cursor, prefix: "inv", filters: [isNull(invitations.acceptedAt)] }, (i) => ({ id: i.id, email: i.email, role: i.role, projects: parseProjects(i.projects), invited_by: i.invitedBy, expires_at: i.expiresAt, created_at: i.createdAt }));
}

/** Revokes a pending invitation (404 when there is none by that id). */
export async function revokeInvitation(c: Context<AppEnv>, id: string): Promise<void> {
  const deleted = await controlDb(c.env)
    .delete(invitations)
    .where(and(eq(invitations.id, id), eq(invitations.tenantId, c.var.tenant.id), isNull(invitations.acceptedAt)))
    .returning({ id: invitations.id, email: invitations.email })
    .get();
  if (!deleted) throw new ApiError("NOT_FOUND", `No pending invitation ${id}`);
  await recordAudit(c, { action: "invitation.revoked", resourceType: "invitation", resourceId: id, details: { email: deleted.email } });
}

/**
 * Accepts an invitation by its token: a new user is created, an existing one proves their password
 * (a wrong one spends the invitation). The membership is written only while a seat is free and the
 * inviter may still grant the role; otherwise nothing of the attempt remains.
 */
export async function acceptInvitation(c: Context<AppEnv>, token: string, { name, password }: { name: string; password: string }) {
  const tenantId = c.var.tenant.id;
  const db = controlDb(c.env);
  const invitation = await db
    .select()
    .from(invitations)
    .where(and(eq(invitations.tokenHash, await sha256Hex(token)), eq(invitations.tenantId, tenantId)))
    .get();
  if (!invitation) throw new ApiError("NOT_FOUND", "No such invitation");
  const now = new Date();
  if (invitation.acceptedAt || new Date(invitation.expiresAt) <= now) throw new ApiError("INVITATION_INVALID", "This invitation was used or has expired");

  const existing = await db.select().from(users).where(eq(users.email, invitation.email)).get();
  if (existing) {
    // Someone else's invitation must not be a way to guess this account's password: each guess
    // spends the invitation, counts as the account's failed sign-in, and the account sees it.
    const attempt = await startAttempt(c.env, invitation.email);
    if (!(await verifyPassword(password, existing.passwordHash))) {
      const spent = await db.delete(invitations).where(and(eq(invitations.id, invitation.id), isNull(invitations.acceptedAt))).returning({ id: invitations.id }).get();
      await recordSecurityEvent(db, { userId: existing.id, tenantId, kind: "invitation_accept_failed", clientAddress: clientAddress(c) });
      if (spent) {
        await recordAudit(c, { action: "invitation.spent", resourceType: "invitation", resourceId: invitation.id, details: { reason: "wrong password" } }, { actor: { type: "user", id: existing.id } });
      }
      throw new ApiError("INVALID_CREDENTIALS", "This email already has an account and that is not its password; the invitation is now void, ask for a new one");
    }
    await attempt.succeeded();
  }
  const newUser = existing ? undefined : { id: newId("usr"), email: invitation.email, name, passwordHash: await hashPassword(password) };
  const user = existing ?? { ...newUser!, createdAt: now.toISOString() };

  // Spend the invitation first, alone: of two racing accepts only one sees changes === 1.
  const claim = await db
    .update(invitations)
    .set({ acceptedAt: now.toISOString() })
    .where(and(eq(invitations.id, invitation.id), isNull(invitations.acceptedAt)))
    .run();
  if (claim.meta.changes !== 1) throw new ApiError("INVITATION_INVALID", "This invitation was used or has expired");

  const session = await startSession(db, tokenConfig(c), { userId: user.id, tenantId, role: invitation.role });
  const inviterStillGrants = holdsRole(tenantId, invitation.invitedBy, rolesThatGrant([invitation.role], "invitations:write"));
  try {
    const plan = c.var.plan;
    await db.batch([
      ...session.statements,
      ...(newUser ? [db.insert(users).values(newUser)] : []),
      // A downgrade since the invitation may have taken its seat, or the inviter may no longer be
      // allowed to grant the role (removed, demoted): then the membership is not written.
      insertWhere(
        db,
        memberships,
        { tenantId, userId: user.id, role: invitation.role, projects: invitation.projects, createdAt: now.toISOString() },
        sql`(SELECT count(*) FROM ${memberships} WHERE ${memberships.tenantId} = ${tenantId}) < ${plan.seats} AND ${inviterStillGrants}`,
      ),
      memberEvent(db, tenantId, "member.joined", { user_id: user.id, email: user.email, name: user.name, role: invitation.role, projects: parseProjects(invitation.projects), joined_at: now.toISOString() }),
    ]);
    const joined = await db
      .select({ userId: memberships.userId })
      .from(memberships)
      .where(and(eq(memberships.tenantId, tenantId), eq(memberships.userId, user.id)))
      .get();
    if (!joined) {
      await db.batch([...discardSession(db, session.familyId), ...(newUser ? [db.delete(users).where(eq(users.id, newUser.id))] : [])]);
      const inviterRole = await currentRole(db, tenantId, invitation.invitedBy, { fresh: true });
      if (!inviterRole || !rolesThatGrant([invitation.role], "invitations:write").includes(inviterRole)) {
        // An invitation never outranks its inviter's current membership: it is void, not given back.
        await db.delete(invitations).where(eq(invitations.id, invitation.id)).run();
        throw new ApiError("INVITATION_INVALID", "The member who invited you can no longer grant this role; ask for a new invitation");
      }
      throw new ApiError("PLAN_LIMIT", `The ${plan.name} plan has ${plan.seats} seats, all taken`);
    }
  } catch (err) {
    // Give the invitation back so nothing is half-written; a member already present is a conflict.
    await db.update(invitations).set({ acceptedAt: null }).where(eq(invitations.id, invitation.id)).run();
    if (err instanceof ApiError) throw err;
    if (isUniqueViolation(err, memberships)) {
      throw new ApiError("CONFLICT", "This user is already a member of the tenant");
    }
    throw err;
  }
  await relayAfterChange(c);
  if (existing) await recordSecurityEvent(db, { userId: user.id, tenantId, kind: "invitation_accepted", clientAddress: clientAddress(c) });
  await recordAudit(
    c,
    { action: "invitation.accepted", resourceType: "member", resourceId: user.id, details: { invitation_id: invitation.id, role: invitation.role } },
    { actor: { type: "user", id: user.id } },
  );
  return { tokens: session.tokens, user };
}
