import { and, asc, eq, gt, inArray, isNull, ne, or, sql } from "drizzle-orm";
import type { Context } from "hono";
import { assertMayAssign, holdsRole, parseProjects, rolesThatGrant, stillGrants } from "../auth/membership";
import { rolesExceeding, TENANT_WIDE_ROLES, type Role } from "../auth/permissions";
import { revokeLiveAccess } from "../auth/revocation";
import { revokeMemberSessions } from "../auth/sessions";
import type { AppEnv, Principal } from "../context";
import { recordAudit } from "../db/audit";
import { apiKeys, memberships, users } from "../db/control/schema";
import { projects as tenantProjects } from "../db/tenant/schema";
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
  /** The projects the member is limited to, or null for every project. */
  projects: readonly string[] | null;
  joinedAt: string;
}

/** At most this many projects per member (a member of more is better given every project). */
export const MAX_MEMBER_PROJECTS = 100;

/**
 * The projects a membership of `role` is limited to, checked and as stored (a JSON array, or null
 * for every project): owners and admins reach every project, a client reaches only the ones it is
 * given (at least one), an editor or viewer either. Each must be a project of this tenant (404 naming
 * `projects`). `projects` undefined keeps `current` where the role allows it.
 */
export async function projectAssignment(c: Context<AppEnv>, role: Role, projects: readonly string[] | null | undefined, current: readonly string[] | null = null): Promise<string | null> {
  const invalid = (message: string) => new ApiError("VALIDATION_FAILED", message, { errors: [{ in: "body", field: "projects", message }] });
  if (TENANT_WIDE_ROLES.has(role)) {
    if (projects) throw invalid(`An ${role} reaches every project; leave projects out or null`);
    return null;
  }
  const wanted = projects === undefined ? current : projects;
  if (wanted === null) {
    if (role === "client") throw invalid("A client sees only the projects it is given: name at least one");
    return null;
  }
  const unique = [...new Set(wanted)];
  if (!unique.length) throw invalid("Name at least one project, or null for every project");
  const found = await c.var.db
    .select({ id: tenantProjects.id })
    .from(tenantProjects)
    .where(and(eq(tenantProjects.tenantId, c.var.tenant.id), inArray(tenantProjects.id, unique)));
  const missing = unique.filter((id) => !found.some((f) => f.id === id));
  if (missing.length) throw new ApiError("NOT_FOUND", `No project ${missing.join(", ")}`, { errors: [{ in: "body", field: "projects", message: `no project ${missing.join(", ")}` }] });
  return JSON.stringify(unique.sort());
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
    .select({ userId: users.id, email: users.email, name: users.name, role: memberships.role, projects: memberships.projects, joinedAt: memberships.createdAt })
    .from(memberships)
    .innerJoin(users, eq(users.id, memberships.userId))
    .where(and(eq(memberships.tenantId, tenantId), eq(memberships.userId, userId)))
    .get();
  if (!row) throw new ApiError("NOT_FOUND", `No member ${userId} in this tenant`);
  return { ...row, projects: parseProjects(row.projects) };
}

const eventData = (m: Member) => ({ user_id: m.userId, email: m.email, name: m.name, role: m.role, projects: m.projects, joined_at: m.joinedAt });

// The last-owner guard lives in the statement itself, so two owners demoting each other at once cannot both succeed.
const notLastOwner = (tenantId: string) =>
  or(ne(memberships.role, "owner"), sql`(SELECT count(*) FROM memberships WHERE tenant_id = ${tenantId} AND role = 'owner') > 1`);

/** The tenant's members, by user id. */
export async function listMembers(c: Context<AppEnv>, { limit, cursor }: { limit: number; cursor?: string }) {
  const tenantId = c.var.tenant.id;
  const rows = await controlDb(c.env)
    .select({ id: users.id, userId: users.id, email: users.email, name: users.name, role: memberships.role, projects: memberships.projects, joinedAt: memberships.createdAt })
    .from(memberships)
    .innerJoin(users, eq(users.id, memberships.userId))
    .where(and(eq(memberships.tenantId, tenantId), cursor ? gt(memberships.userId, decodeCursor(cursor, "usr")) : undefined))
    .orderBy(asc(memberships.userId))
    .limit(limit + 1);
  return page(rows, limit, (m): Member => ({ ...m, projects: parseProjects(m.projects) }));
}

/**
 * Changes a member's role, the projects they are limited to, or both (and lowers the ceiling of
 * their API keys with a role that grants less; a key reaches only its creator's projects, read with
 * the key). The last-owner guard and the actor's right to manage both roles are conditions of the
 * write itself.
 */
export async function updateMember(c: Context<AppEnv>, userId: string, body: { role?: Role; projects?: string[] | null }): Promise<Member> {
  const tenantId = c.var.tenant.id;
  const db = controlDb(c.env);
  const member = await findMember(db, tenantId, userId);
  const role = body.role ?? member.role;
  assertMayAssign(c.var.principal, member.role);
  assertMayAssign(c.var.principal, role);
  const stored = await projectAssignment(c, role, body.projects, member.projects);
  const projects = parseProjects(stored);
  // Lists are stored sorted and unique, so the stored form compares.
  const projectsChanged = stored !== (member.projects && JSON.stringify(member.projects));
  if (member.role === role && !projectsChanged) return member;

  const updated = { ...member, role, projects };
  const [rows] = await db.batch([
    db
      .update(memberships)
      .set({ role, projects: stored })
      .where(and(eq(memberships.tenantId, tenantId), eq(memberships.userId, userId), notLastOwner(tenantId), actorStillManages(tenantId, c.var.principal, [member.role, role])))
      .returning(),
    ...(member.role !== role ? [memberEvent(db, tenantId, "member.role_changed", { ...eventData(updated), previous_role: member.role })] : []),
    ...(projectsChanged ? [memberEvent(db, tenantId, "member.projects_changed", { ...eventData(updated), previous_projects: member.projects })] : []),
    // A key never exceeds its creator's role: a role granting less lowers the ceiling of their keys too.
    db
      .update(apiKeys)
      .set({ role })
      .where(
        and(
          eq(apiKeys.tenantId, tenantId),
          eq(apiKeys.createdBy, userId),
          inArray(apiKeys.role, rolesExceeding(role)),
          isNull(apiKeys.revokedAt),
          // Only if the role change above happened (the last-owner guard may have refused it).
          sql`EXISTS (SELECT 1 FROM memberships WHERE tenant_id = ${tenantId} AND user_id = ${userId} AND role = ${role})`,
        ),
      ),
  ]);
  if (!rows.length) throw await refusal(db, tenantId, c.var.principal, new ApiError("LAST_OWNER", "This is the tenant's last owner; make another member owner first"));
  await relayAfterChange(c);
  await revokeLiveAccess(c.env, c.var.tenant, { userId }, "access changed; reconnect to continue with the new access");
  const details = { ...(member.role !== role && { from: member.role, to: role }), ...(projectsChanged && { projects, previous_projects: member.projects }) };
  await recordAudit(c, { action: member.role !== role ? "member.role_changed" : "member.projects_changed", resourceType: "member", resourceId: userId, details });
  return updated;
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
