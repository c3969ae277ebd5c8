import { and, eq, isNull, type SQL } from "drizzle-orm";
import { memberships, refreshTokenFamilies, refreshTokens } from "../db/control/schema";
import type { ControlDb } from "../db/router";
import { randomSecret, sha256Hex } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import type { Role } from "./permissions";
import { ACCESS_TOKEN_TTL_SECONDS, signAccessToken, type TokenConfig } from "./tokens";

/** Refresh tokens last thirty days from their issue; each use rotates to a new one. */
export const REFRESH_TOKEN_TTL_SECONDS = 30 * 24 * 3600;
const REFRESH_PREFIX = "rt_";

/** The token pair every login, signup, refresh and invitation acceptance returns. */
export interface TokenPair {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  refresh_token: string;
}

interface Member {
  userId: string;
  tenantId: string;
  role: Role;
}

async function newRefreshToken(familyId: string, now: Date) {
  const token = `${REFRESH_PREFIX}${randomSecret(32)}`;
  return {
    token,
    row: {
      id: newId("rtk"),
      familyId,
      tokenHash: await sha256Hex(token),
      expiresAt: new Date(now.getTime() + REFRESH_TOKEN_TTL_SECONDS * 1000).toISOString(),
    },
  };
}

/**
 * Statements that start a new refresh-token family for a member, to run in the caller's
 * batch (signup and invitation acceptance write them beside the user and membership).
 */
export async function startSession(db: ControlDb, cfg: TokenConfig, member: Member, now = new Date()) {
  const familyId = newId("rtf");
  const refresh = await newRefreshToken(familyId, now);
  const statements = [
    db.insert(refreshTokenFamilies).values({ id: familyId, tenantId: member.tenantId, userId: member.userId }),
    db.insert(refreshTokens).values(refresh.row),
  ] as const;
  const tokens: TokenPair = {
    access_token: await signAccessToken(cfg, member),
    token_type: "Bearer",
    expires_in: ACCESS_TOKEN_TTL_SECONDS,
    refresh_token: refresh.token,
  };
  return { statements, tokens, familyId };
}

/** Statements undoing `startSession` (when the batch it joined turned out not to admit the member). */
export function discardSession(db: ControlDb, familyId: string) {
  return [db.delete(refreshTokens).where(eq(refreshTokens.familyId, familyId)), db.delete(refreshTokenFamilies).where(eq(refreshTokenFamilies.id, familyId))] as const;
}

const invalidRefresh = () => new ApiError("INVALID_TOKEN", "The refresh token is invalid, expired or revoked");

/** A spent refresh token came back: its family is revoked. Carries the user, for the audit log. */
export class RefreshTokenReused extends ApiError {
  constructor(readonly userId: string) {
    super("REFRESH_TOKEN_REUSED", "This refresh token was already used; every session of its login has been revoked");
  }
}

/**
 * Spends a refresh token and returns the next pair. The token must belong to this tenant,
 * be unspent and its family unrevoked; a spent token presented again is a theft signal,
 * so its whole family is revoked. The member's current role goes into the new access token.
 */
export async function rotateSession(db: ControlDb, cfg: TokenConfig, tenantId: string, presented: string, now = new Date()): Promise<TokenPair> {
  if (!presented.startsWith(REFRESH_PREFIX)) throw invalidRefresh();
  const found = await db
    .select({ token: refreshTokens, family: refreshTokenFamilies })
    .from(refreshTokens)
    .innerJoin(refreshTokenFamilies, eq(refreshTokens.familyId, refreshTokenFamilies.id))
    .where(eq(refreshTokens.tokenHash, await sha256Hex(presented)))
    .get();
  if (!found || found.family.tenantId !== tenantId || found.family.revokedAt) throw invalidRefresh();
  if (found.token.usedAt) {
    await revokeFamily(db, found.family.id, "reuse", now);
    throw new RefreshTokenReused(found.family.userId);
  }
  if (new Date(found.token.expiresAt) <= now) throw invalidRefresh();

  // Claim the token: only one of two racing refreshes sees changes === 1; the other is reuse.
  const claim = await db
    .update(refreshTokens)
    .set({ usedAt: now.toISOString() })
    .where(and(eq(refreshTokens.id, found.token.id), isNull(refreshTokens.usedAt)))
    .run();
  if (claim.meta.changes !== 1) {
    await revokeFamily(db, found.family.id, "reuse", now);
    throw new RefreshTokenReused(found.family.userId);
  }

  const membership = await db
    .select({ role: memberships.role })
    .from(memberships)
    .where(and(eq(memberships.tenantId, tenantId), eq(memberships.userId, found.family.userId)))
    .get();
  if (!membership) {
    await revokeFamily(db, found.family.id, "membership_ended", now);
    throw invalidRefresh();
  }
  const next = await newRefreshToken(found.family.id, now);
  await db.insert(refreshTokens).values(next.row).run();
  return {
    access_token: await signAccessToken(cfg, { userId: found.family.userId, tenantId, role: membership.role }),
    token_type: "Bearer",
    expires_in: ACCESS_TOKEN_TTL_SECONDS,
    refresh_token: next.token,
  };
}

/** Revokes the family of a refresh token of this tenant (logout) and names its user; unknown tokens are ignored. */
export async function endSession(db: ControlDb, tenantId: string, presented: string, now = new Date()): Promise<string | null> {
  const found = await db
    .select({ familyId: refreshTokens.familyId, tenantId: refreshTokenFamilies.tenantId, userId: refreshTokenFamilies.userId })
    .from(refreshTokens)
    .innerJoin(refreshTokenFamilies, eq(refreshTokens.familyId, refreshTokenFamilies.id))
    .where(eq(refreshTokens.tokenHash, await sha256Hex(presented)))
    .get();
  if (!found || found.tenantId !== tenantId) return null;
  await revokeFamily(db, found.familyId, "logout", now);
  return found.userId;
}

async function revokeFamily(db: ControlDb, familyId: string, reason: string, now: Date) {
  await db
    .update(refreshTokenFamilies)
    .set({ revokedAt: now.toISOString(), revokedReason: reason })
    .where(and(eq(refreshTokenFamilies.id, familyId), isNull(refreshTokenFamilies.revokedAt)))
    .run();
}

/** Statement revoking every session a user has in a tenant, optionally only if a condition holds at run time. */
export function revokeMemberSessions(db: ControlDb, tenantId: string, userId: string, reason: string, now: Date, onlyIf?: SQL) {
  return db
    .update(refreshTokenFamilies)
    .set({ revokedAt: now.toISOString(), revokedReason: reason })
    .where(and(eq(refreshTokenFamilies.tenantId, tenantId), eq(refreshTokenFamilies.userId, userId), isNull(refreshTokenFamilies.revokedAt), onlyIf));
}
