import { and, eq, isNull } from "drizzle-orm";
import type { Context } from "hono";
import { listOwned } from "../db/owned";
import { insertApiKey, mintApiKey, parseScopes } from "../auth/api-keys";
import type { Permission } from "../auth/permissions";
import { revokeLiveAccess } from "../auth/revocation";
import type { AppEnv } from "../context";
import { recordAudit } from "../db/audit";
import { apiKeys } from "../db/control/schema";
import { controlDb } from "../db/router";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";

export type ApiKeyRow = typeof apiKeys.$inferSelect;

/**
 * Creates an API key for the caller, never beyond what the caller may do now (its ceiling is the
 * role the insert itself finds). Answers the row and the secret, shown this once.
 */
export async function createKey(c: Context<AppEnv>, body: { name: string; scopes: Permission[]; expires_at?: string; rate_limit_per_minute?: number }) {
  const principal = c.var.principal;
  const beyond = body.scopes.filter((s) => !principal.permissions.has(s));
  if (beyond.length) throw new ApiError("FORBIDDEN", `A key cannot hold more than its creator may do: ${beyond.join(", ")}`);
  if (body.expires_at && new Date(body.expires_at) <= new Date()) {
    throw new ApiError("VALIDATION_FAILED", "expires_at is in the past", { errors: [{ in: "body", field: "expires_at", message: "must be in the future" }] });
  }
  const minted = await mintApiKey();
  const row = await insertApiKey(controlDb(c.env), {
    id: newId("key"),
    tenantId: c.var.tenant.id,
    name: body.name,
    prefix: minted.prefix,
    hash: minted.hash,
    scopes: [...new Set(body.scopes)],
    createdBy: principal.userId,
    expiresAt: body.expires_at ? new Date(body.expires_at).toISOString() : null,
    rateLimitPerMinute: body.rate_limit_per_minute ?? null,
  });
  // The creator's membership ended or shrank after this request was authenticated.
  if (!row) throw new ApiError("FORBIDDEN", "Your current role does not grant these scopes");
  await recordAudit(c, { action: "api_key.created", resourceType: "api_key", resourceId: row.id, details: { name: row.name, scopes: parseScopes(row.scopes) } });
  return { row, key: minted.key };
}

/** The tenant's live keys, newest first. */
export async function listKeys(c: Context<AppEnv>, { limit, cursor }: { limit: number; cursor?: string }) {
  return listOwned(controlDb(c.env), apiKeys, c.var.tenant.id, { limit, cursor, prefix: "key", filters: [isNull(apiKeys.revokedAt)] }, (r) => r);
}

/** Revokes a key (its creator, or an admin or owner); its sockets close at once. */
export async function revokeKey(c: Context<AppEnv>, id: string): Promise<void> {
  const tenantId = c.var.tenant.id;
  const db = controlDb(c.env);
  const key = await db.select().from(apiKeys).where(and(eq(apiKeys.id, id), eq(apiKeys.tenantId, tenantId), isNull(apiKeys.revokedAt))).get();
  if (!key) throw new ApiError("NOT_FOUND", `No API key ${id}`);
  const principal = c.var.principal;
  if (key.createdBy !== principal.userId && !principal.permissions.has("members:write")) {
    throw new ApiError("FORBIDDEN", "Only admins and owners revoke other members' keys");
  }
  await db.update(apiKeys).set({ revokedAt: new Date().toISOString() }).where(and(eq(apiKeys.id, id), eq(apiKeys.tenantId, tenantId))).run();
  await revokeLiveAccess(c.env, c.var.tenant, { apiKeyId: id }, "API key revoked");
  await recordAudit(c, { action: "api_key.revoked", resourceType: "api_key", resourceId: id });
}
