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

/** What a membership lets its holder reach: a role, and the projects it is limited to (null: every project). */
export interface Reach {
  role: Role;
  projects: readonly string[] | null;
}
const remembered = new TtlCache<{ reach: Reach | null }>(10_000);

const cacheKey = (tenantId: string, userId: string) => `${tenantId}:${userId}`;

/** Methods that change nothing: a remembered role may answer them. */
export const SAFE_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS"]);

/** A stored project list (a JSON array, or NULL for every project). */
export function parseProjects(json: string | null): string[] | null {
  if (json === null) return null;
  const value: unknown = JSON.parse(json);
  return Array.isArray(value) ? value.filter((p): p is string => typeof p === "string") : [];
}

/**
 * A user's role in a tenant, and the projects it is limited to, as the control database has them,
 * or null for a non-member. With `fresh`, it is read now (every write takes this path, so a removed,
 * demoted or narrowed member's still-unexpired token writes nothing beyond their current reach);
 * otherwise a value this isolate read in the last 10 seconds may answer.
 */
export async function currentMembership(db: ControlDb, tenantId: string, userId: string, opts: { fresh: boolean }): Promise<Reach | null> {
  const key = cacheKey(tenantId, userId);
  if (!opts.fresh) {
    const hit = remembered.get(key);
    if (hit) return hit.reach;
  }
  const row = await db
    .select({ role: memberships.role, projects: memberships.projects })
    .from(memberships)
    .where(and(eq(memberships.tenantId, tenantId), eq(memberships.userId, userId)))
    .get();
  const reach = row ? { role: row.role, projects: parseProjects(row.projects) } : null;
  remembered.set(key, { reach }, MEMBERSHIP_CACHE_TTL_MS);
  return reach;
}

/** A user's role in a tenant, or null for a non-member (see `currentMembership`). */
export async function currentRole(db: ControlDb, tenantId: string, userId: string, opts: { fresh: boolean }): Promise<Role | null> {
  return (await currentMembership(db, tenantId, userId, opts))?.role ?? null;
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
    if (key?.role !== principal.role) return false;
  }
  const reach = await currentMembership(db, tenantId, principal.userId, { fresh: true });
  return reach !== null && (principal.kind === "api_key" || reach.role === principal.role) && sameProjects(reach.projects, principal.projects);
}

const sameProjects = (a: readonly string[] | null, b: readonly string[] | null) => (a === null || b === null ? a === b : a.length === b.length && a.every((p) => b.includes(p)));

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
