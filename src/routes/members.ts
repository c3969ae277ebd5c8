import { createRoute, z } from "@hono/zod-openapi";
import { and, asc, eq, gt, inArray, isNull, ne, or, sql } from "drizzle-orm";
import { assertMayAssign, holdsRole, rolesThatGrant, stillGrants } from "../auth/membership";
import { ROLE_RANK, ROLES, type Role } from "../auth/permissions";
import { revokeLiveAccess } from "../auth/revocation";
import { revokeMemberSessions } from "../auth/sessions";
import type { Principal } from "../context";
import { apiKeys, memberships, users } from "../db/control/schema";
import { controlDb, type ControlDb } from "../db/router";
import { ApiError } from "../lib/errors";
import { decodeCursor, page, PageQuery } from "../lib/pagination";
import { recordAudit } from "../db/audit";
import { errors, guarded, jsonBody, jsonResponse, pageOf, router } from "./openapi";

const MemberSchema = z
  .object({ user_id: z.string(), email: z.string(), name: z.string(), role: z.enum(ROLES), joined_at: z.string() })
  .openapi("Member");
const UserIdParam = z.object({ userId: z.string().min(1).max(64) });

const listMembers = createRoute({
  method: "get",
  path: "/v1/members",
  tags: ["Members"],
  summary: "List the tenant's members",
  ...guarded("members:read"),
  request: { query: PageQuery },
  responses: { 200: jsonResponse(pageOf(MemberSchema), "A page of members"), ...errors(400, 401, 403) },
});

const updateMember = createRoute({
  method: "patch",
  path: "/v1/members/{userId}",
  tags: ["Members"],
  summary: "Change a member's role; only an owner grants or changes owner; the last owner stays",
  ...guarded("members:write"),
  request: { params: UserIdParam, body: jsonBody(z.object({ role: z.enum(ROLES) })) },
  responses: { 200: jsonResponse(MemberSchema, "The member"), ...errors(400, 401, 403, 404, 409, 415) },
});

const removeMember = createRoute({
  method: "delete",
  path: "/v1/members/{userId}",
  tags: ["Members"],
  summary: "Remove a member: their sessions and API keys in this tenant end with it",
  ...guarded("members:write"),
  request: { params: UserIdParam },
  responses: { 204: { description: "Removed" }, ...errors(401, 403, 404, 409) },
});


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

// The last-owner guard lives in the statement itself, so two owners demoting each other at once cannot both succeed.
const notLastOwner = (tenantId: string) =>
  or(ne(memberships.role, "owner"), sql`(SELECT count(*) FROM memberships WHERE tenant_id = ${tenantId} AND role = 'owner') > 1`);

const render = (m: { userId: string; email: string; name: string; role: Role; joinedAt: string }) => ({
  user_id: m.userId,
  email: m.email,
  name: m.name,
  role: m.role,
  joined_at: m.joinedAt,
});

/** Members of the host's tenant. */
export const memberRoutes = router()
  .openapi(listMembers, async (c) => {
    const { limit, cursor } = c.req.valid("query");
    const tenantId = c.var.tenant.id;
    const rows = await controlDb(c.env)
      .select({ id: users.id, userId: users.id, email: users.email, name: users.name, role: memberships.role, joinedAt: memberships.createdAt })
      .from(memberships)
      .innerJoin(users, eq(users.id, memberships.userId))
      .where(and(eq(memberships.tenantId, tenantId), cursor ? gt(memberships.userId, decodeCursor(cursor, "usr")) : undefined))
      .orderBy(asc(memberships.userId))
      .limit(limit + 1);
    return c.json(page(rows, limit, render), 200);
  })
  .openapi(updateMember, async (c) => {
    const { userId } = c.req.valid("param");
    const { role } = c.req.valid("json");
    const tenantId = c.var.tenant.id;
    const db = controlDb(c.env);
    const member = await findMember(db, tenantId, userId);
    assertMayAssign(c.var.principal, member.role);
    assertMayAssign(c.var.principal, role);
    if (member.role === role) return c.json(render(member), 200);

    const demotedAbove = ROLES.filter((r) => ROLE_RANK[r] > ROLE_RANK[role]);
    const [updated] = await db.batch([
      db
        .update(memberships)
        .set({ role })
        .where(and(eq(memberships.tenantId, tenantId), eq(memberships.userId, userId), notLastOwner(tenantId), actorStillManages(tenantId, c.var.principal, [member.role, role])))
        .returning(),
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
    await revokeLiveAccess(c.env, c.var.tenant, { userId }, "role changed; reconnect to continue with the new role");
    await recordAudit(c, { action: "member.role_changed", resourceType: "member", resourceId: userId, details: { from: member.role, to: role } });
    return c.json(render({ ...member, role }), 200);
  })
  .openapi(removeMember, async (c) => {
    const { userId } = c.req.valid("param");
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
      revokeMemberSessions(db, tenantId, userId, "membership_ended", now, gone),
      db
        .update(apiKeys)
        .set({ revokedAt: now.toISOString() })
        .where(and(eq(apiKeys.tenantId, tenantId), eq(apiKeys.createdBy, userId), isNull(apiKeys.revokedAt), gone)),
    ]);
    if (!deleted.length) throw await refusal(db, tenantId, c.var.principal, new ApiError("LAST_OWNER", "This is the tenant's last owner; it cannot be removed"));
    await revokeLiveAccess(c.env, c.var.tenant, { userId }, "membership ended");
    await recordAudit(c, { action: "member.removed", resourceType: "member", resourceId: userId, details: { role: member.role } });
    return c.body(null, 204);
  });
