import { insertWhere } from "../db/insert-where";
import { and, eq, getTableColumns, isNull, sql } from "drizzle-orm";
import { apiKeys, memberships } from "../db/control/schema";
import type { ControlDb } from "../db/router";
import { randomSecret, sha256Hex } from "../lib/crypto";
import { TtlCache } from "../lib/ttl-cache";
import { parseProjects, rolesGranting } from "./membership";
import { PERMISSIONS, ROLE_PERMISSIONS, type Permission, type Role } from "./permissions";

/** Every key starts with this, so a bearer credential says whether it is a key or a JWT. */
export const API_KEY_PREFIX = "tsk_";

/** A new key: the secret (shown once), its visible prefix, and the hash that is stored. */
export async function mintApiKey(): Promise<{ key: string; prefix: string; hash: string }> {
  const key = `${API_KEY_PREFIX}${randomSecret(30)}`;
  return { key, prefix: key.slice(0, API_KEY_PREFIX.length + 8), hash: await sha256Hex(key) };
}

/**
 * Live keys by hash, kept a few seconds per isolate so a busy key does not cost a control
 * database read per request. A revocation clears this isolate's cache at once; other
 * isolates stop honouring the key within this TTL.
 */
export const API_KEY_CACHE_TTL_MS = 10_000;
const liveKeys = new TtlCache<typeof apiKeys.$inferSelect & { projects: string | null }>(5_000);

/** Drops every cached key of this isolate (after a revocation or a role change). */
export function forgetCachedApiKeys(): void {
  liveKeys.clear();
}

export interface ResolvedApiKey {
  id: string;
  hash: string;
  /** Epoch ms, or null for a key that does not expire. */
  expiresAt: number | null;
  /** The key's own requests per minute, if lower than its plan's. */
  rateLimitPerMinute: number | null;
  createdBy: string;
  role: Role;
  permissions: ReadonlySet<Permission>;
  /** The projects its creator's membership is limited to, now (null: every project). */
  projects: readonly string[] | null;
  lastUsedAt: string | null;
}

/**
 * Finds a live key of this tenant by its secret. A key of another tenant, a revoked or an
 * expired one is null. What it may do is its scopes within its creator's role. With `fresh`
 * (every write), the key is read now rather than from this isolate's 10-second memory.
 */
export async function findApiKey(db: ControlDb, tenantId: string, secret: string, opts: { fresh: boolean }, now = new Date()): Promise<ResolvedApiKey | null> {
  const hash = await sha256Hex(secret);
  let row = opts.fresh ? undefined : liveKeys.get(hash);
  if (!row) {
    // The creator's project assignment comes with the key, read in the same statement: a key reaches no project its creator cannot.
    row = await db
      .select({ ...getTableColumns(apiKeys), projects: memberships.projects })
      .from(apiKeys)
      .leftJoin(memberships, and(eq(memberships.tenantId, apiKeys.tenantId), eq(memberships.userId, apiKeys.createdBy)))
      .where(and(eq(apiKeys.keyHash, hash), isNull(apiKeys.revokedAt)))
      .get();
    if (!row) {
      liveKeys.delete(hash);
      return null;
    }
    liveKeys.set(hash, row, API_KEY_CACHE_TTL_MS);
  }
  if (row.tenantId !== tenantId) return null;
  if (row.expiresAt && new Date(row.expiresAt) <= now) return null;
  const scopes = parseScopes(row.scopes);
  const ceiling = ROLE_PERMISSIONS[row.role];
  return {
    id: row.id,
    hash,
    expiresAt: row.expiresAt ? new Date(row.expiresAt).getTime() : null,
    rateLimitPerMinute: row.rateLimitPerMinute,
    createdBy: row.createdBy,
    role: row.role,
    permissions: new Set(scopes.filter((s) => ceiling.has(s))),
    projects: parseProjects(row.projects),
    lastUsedAt: row.lastUsedAt,
  };
}

/** Records a use in the cached copy too, so the once-a-minute last-used write stays once a minute. */
export function markApiKeyUsed(key: ResolvedApiKey, at: string): void {
  const cached = liveKeys.get(key.hash);
  if (cached) cached.lastUsedAt = at;
}

/** Scopes as stored (a JSON array), keeping only permissions that still exist. */
export function parseScopes(json: string): Permission[] {
  const known = new Set<string>(PERMISSIONS);
  const value: unknown = JSON.parse(json);
  return Array.isArray(value) ? value.filter((s): s is Permission => typeof s === "string" && known.has(s)) : [];
}

/** A key about to be stored; its role is not given: it is the creator's role at the moment of the insert. */
export interface NewApiKey {
  id: string;
  tenantId: string;
  name: string;
  prefix: string;
  hash: string;
  scopes: Permission[];
  createdBy: string;
  expiresAt: string | null;
  rateLimitPerMinute: number | null;
}

/**
 * Stores a key only if its creator is, at that instant, a member whose role grants every scope
 * (and `api_keys:write`): the membership is read by the INSERT itself, and the key's ceiling is
 * that role. Null when the creator is no longer such a member — nothing is written.
 */
export async function insertApiKey(db: ControlDb, key: NewApiKey): Promise<typeof apiKeys.$inferSelect | null> {
  const allowed = rolesGranting([...key.scopes, "api_keys:write"]);
  if (!allowed.length) return null;
  const row = {
    id: key.id,
    tenantId: key.tenantId,
    name: key.name,
    prefix: key.prefix,
    keyHash: key.hash,
    scopes: JSON.stringify(key.scopes),
    role: sql`m.role`,
    createdBy: key.createdBy,
    expiresAt: key.expiresAt,
    rateLimitPerMinute: key.rateLimitPerMinute,
  };
  const membership = sql`m.tenant_id = ${key.tenantId} AND m.user_id = ${key.createdBy} AND m.role IN ${allowed}`;
  return (await insertWhere(db, apiKeys, row, membership, sql`memberships m`).returning().get()) ?? null;
}
