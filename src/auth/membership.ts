import { and, eq, inArray, isNull, sql, type SQL } from "drizzle-orm";
import type { Principal } from "../context";
import { apiKeys, memberships } from "../db/control/schema";
import { controlDb, type ControlDb } from "../db/router";
import type { Env } from "../env";
import { TtlCache } from "../lib/ttl-cache";
import { ROLE_PERMISSIONS, ROLES, type Permission, type Role } from "./permissions";
import { ApiError } from "../lib/errors";

/**
 * How long an isolate may answer a read with a member's remembered role. Writes never use the
 * remembered role: they read the membership as it is now (see `currentRole`).
 */
export const MEMBERSHIP_CACHE_TTL_MS = 10_000;
const remembered = new TtlCache<{ role: Role | null }>(10_000);

const cacheKey = (tenantId: string, userId: string) => `${tenantId}:${userId}`;

/** Methods that change nothing: a remembered role may answer them. */
export const SAFE_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * A user's role in a tenant as the control database has it, or null for a non-member. With
 * `fresh`, it is read now (every write takes this path, so a removed or demoted member's
 * still-unexpired token writes nothing beyond their current role); otherwise a value this isolate
 * read in the last 10 seconds may answer.
 */
export async function currentRole(db: ControlDb, tenantId: string, userId: string, opts: { fresh: boolean }): Promise<Role | null> {
  const key = cacheKey(tenantId, userId);
  if (!opts.fresh) {
    const hit = remembered.get(key);
    if (hit) return hit.role;
  }
  const row = await db
    .select({ role: memberships.role })
    .from(memberships)
    .where(and(eq(memberships.tenantId, tenantId), eq(memberships.userId, userId)))
    .get();
  const role = row?.role ?? null;
  remembered.set(key, { role }, MEMBERSHIP_CACHE_TTL_MS);
  return role;
}

/** Drops this isolate's remembered role of a member (after their role changed or they left). */
export function forgetMembership(tenantId: string, userId: string): void {
  remembered.delete(cacheKey(tenantId, userId));
}

/** The roles that grant every one of `permissions`. */
export function rolesGranting(permissions: Iterable<Permission>): Role[] {
  const wanted = [...permissions];
  return ROLES.filter((r) => wanted.every((p) => ROLE_PERMISSIONS[r].has(p)));
}

/** The roles that may hand out or change `roles` through `permission`: only an owner makes or touches an owner. */
export function rolesThatGrant(roles: readonly Role[], permission: Permission): readonly Role[] {
  return roles.includes("owner") ? ["owner"] : rolesGranting([permission]);
}

/**
 * A condition, for the WHERE of the write it guards, that holds only while `userId` is a member
 * of `tenantId` with one of `roles`: checked by the database inside the write, so a membership
 * that ends or shrinks between the request's check and its write still stops the write.
 */
export function holdsRole(tenantId: string, userId: string, roles: readonly Role[]): SQL {
  if (!roles.length) return sql`0`;
  return sql`EXISTS (SELECT 1 FROM memberships WHERE tenant_id = ${tenantId} AND user_id = ${userId} AND ${inArray(memberships.role, [...roles])})`;
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

/**
 * Whether a member's role, read now, grants `permission`: what tells apart, after a write guarded by
 * `holdsRole` changed nothing, an actor who lost the right meanwhile from the write's other reasons.
 */
export async function stillGrants(db: ControlDb, tenantId: string, userId: string, permission: Permission): Promise<boolean> {
  const role = await currentRole(db, tenantId, userId, { fresh: true });
  return role !== null && ROLE_PERMISSIONS[role].has(permission);
}

/** Only an owner may touch an owner or make one. */
export function assertMayAssign(actor: Principal, role: Role) {
  if (role === "owner" && actor.role !== "owner") throw new ApiError("FORBIDDEN", "Only an owner can grant or change the owner role");
}
