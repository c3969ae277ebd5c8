import { eq } from "drizzle-orm";
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { API_KEY_PREFIX, findApiKey, markApiKeyUsed } from "../auth/api-keys";
import { currentMembership, SAFE_METHODS } from "../auth/membership";
import { ROLE_PERMISSIONS, TENANT_WIDE_WRITES, type Permission } from "../auth/permissions";
import { ACCESS_TOKEN_TTL_SECONDS, verifyAccessToken } from "../auth/tokens";
import type { AppEnv, Principal } from "../context";
import { apiKeys } from "../db/control/schema";
import { controlDb } from "../db/router";
import { ApiError } from "../lib/errors";
import { enforceLimits, limitAnonymous, principalLimits } from "./rate-limit";

const LAST_USED_RESOLUTION_MS = 60_000;

/** Token settings from the Worker's secrets; the issuer is the platform host. */
export function tokenConfig(c: Context<AppEnv>) {
  const config = c.var.config;
  return { privateKey: config.JWT_PRIVATE_KEY, previousPublicKeys: config.JWT_PREVIOUS_PUBLIC_KEYS, issuer: `https://${config.BASE_DOMAIN}` };
}

const unauthenticated = (detail: string, code: "UNAUTHENTICATED" | "INVALID_TOKEN") =>
  new ApiError(code, detail, { headers: { "WWW-Authenticate": `Bearer realm="tessera"${code === "INVALID_TOKEN" ? ', error="invalid_token"' : ""}` } });

/** The bearer credential of `Authorization: Bearer`. */
function bearerCredential(c: Context<AppEnv>): string {
  const header = c.req.header("authorization");
  if (!header) throw unauthenticated("Send Authorization: Bearer <access token or API key>", "UNAUTHENTICATED");
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match) throw unauthenticated("The Authorization header must be `Bearer <credential>`", "UNAUTHENTICATED");
  return match[1]!;
}

/**
 * The credential of a WebSocket upgrade. Browsers cannot set headers on one, so besides
 * `Authorization: Bearer` it may come as a `bearer.<token>` subprotocol or an `access_token` query parameter.
 */
function webSocketCredential(c: Context<AppEnv>): string {
  if (c.req.header("authorization")) return bearerCredential(c);
  const offered = c.req.header("sec-websocket-protocol")?.split(",").map((p) => p.trim()) ?? [];
  const fromProtocol = offered.find((p) => p.startsWith("bearer."))?.slice("bearer.".length);
  const credential = fromProtocol || c.req.query("access_token");
  if (!credential) throw unauthenticated("Authenticate with Authorization: Bearer, a bearer.<token> subprotocol or ?access_token=", "UNAUTHENTICATED");
  return credential;
}

/**
 * Resolves an API key (`tsk_…`) or an access JWT for the host's tenant, with what its holder may
 * do *now*: an access token's role claim is not trusted, the membership is read (a write reads it
 * fresh; a read may use what this isolate read in the last 10 s), so a removed member's token is
 * refused and a demoted one's carries the lower role. A key's ceiling is kept in step with its
 * creator's role by the membership writes themselves, and writes read the key fresh too.
 */
async function authenticate(c: Context<AppEnv>, credential: string, opens: "request" | "connection"): Promise<Principal> {
  const tenant = c.var.tenant;
  // A connection (a socket, an event stream) outlives the request: it is opened only on the membership as it is now.
  const fresh = opens === "connection" || !SAFE_METHODS.has(c.req.method);
  const db = controlDb(c.env);

  if (credential.startsWith(API_KEY_PREFIX)) {
    const key = await findApiKey(db, tenant.id, credential, { fresh });
    if (!key) throw unauthenticated("The API key is unknown, revoked or expired", "INVALID_TOKEN");
    const now = new Date();
    if (!key.lastUsedAt || now.getTime() - new Date(key.lastUsedAt).getTime() > LAST_USED_RESOLUTION_MS) {
      // Off the response path, and at most once a minute per key, so a busy key does not write on every call.
      markApiKeyUsed(key, now.toISOString());
      c.executionCtx.waitUntil(db.update(apiKeys).set({ lastUsedAt: now.toISOString() }).where(eq(apiKeys.id, key.id)).run());
    }
    // A key has no short expiry of its own; a connection it opens re-authenticates as often as an access token would.
    const expiresAt = Math.min(key.expiresAt ?? Number.POSITIVE_INFINITY, now.getTime() + ACCESS_TOKEN_TTL_SECONDS * 1000);
    return { kind: "api_key", keyId: key.id, userId: key.createdBy, role: key.role, permissions: within(key.permissions, key.projects), projects: key.projects, expiresAt, keyLimit: key.rateLimitPerMinute };
  }

  const token = await verifyAccessToken(tokenConfig(c), credential, tenant.id);
  if (!token) throw unauthenticated("The access token is invalid, expired or for another tenant", "INVALID_TOKEN");
  const reach = await currentMembership(db, tenant.id, token.userId, { fresh });
  if (!reach) throw unauthenticated("The access token's holder is no longer a member of this tenant", "INVALID_TOKEN");
  return { kind: "user", userId: token.userId, role: reach.role, permissions: within(ROLE_PERMISSIONS[reach.role], reach.projects), projects: reach.projects, expiresAt: token.exp * 1000 };
}

/** A role's permissions as a caller limited to `projects` holds them: without the writes that change what every project shares. */
function within(permissions: ReadonlySet<Permission>, projects: readonly string[] | null): ReadonlySet<Permission> {
  return projects === null ? permissions : new Set([...permissions].filter((p) => !TENANT_WIDE_WRITES.has(p)));
}

/**
 * Authenticates, counting a request whose credential is missing or refused under its client
 * address (never under the tenant: only the tenant's own members and keys spend its budget).
 */
async function authenticateOrCount(c: Context<AppEnv>, readCredential: (c: Context<AppEnv>) => string, opens: "request" | "connection" = "request"): Promise<Principal> {
  try {
    return await authenticate(c, readCredential(c), opens);
  } catch (err) {
    await limitAnonymous(c);
    throw err;
  }
}

/** Counts the request under the caller's own limits (key, member) and then the tenant's. */
async function limitPrincipal(c: Context<AppEnv>, principal: Principal) {
  await enforceLimits(c, principalLimits(c.var.tenant, c.var.plan, principal));
}

/** For routes anyone may call on a tenant's host (login, refresh, invitations): counted per client address. */
export function publicRoute() {
  return createMiddleware<AppEnv>(async function publicRoute(c, next) {
    await limitAnonymous(c);
    await next();
  });
}

/** Requires any valid credential for the host's tenant. */
export function requireAuth() {
  return createMiddleware<AppEnv>(async function requireAuth(c, next) {
    const principal = await authenticateOrCount(c, bearerCredential);
    await limitPrincipal(c, principal);
    c.set("principal", principal);
    await next();
  });
}

/**
 * Requires a credential whose role (and, for a key, scopes) grants `permission`; `from:
 * "websocket"` also accepts the ways browsers authenticate a WebSocket upgrade. `opens:
 * "connection"` (a WebSocket, an event stream) reads the membership fresh, as a write does.
 */
export function requirePermission(permission: Permission, opts: { from?: "header" | "websocket"; opens?: "request" | "connection" } = {}) {
  return createMiddleware<AppEnv>(async function requirePermission(c, next) {
    const principal = await authenticateOrCount(c, opts.from === "websocket" ? webSocketCredential : bearerCredential, opts.opens);
    // Counted before the permission check: refused calls spend the caller's budget too.
    await limitPrincipal(c, principal);
    if (!principal.permissions.has(permission)) {
      const roleGrants = ROLE_PERMISSIONS[principal.role].has(permission);
      throw roleGrants && principal.projects !== null && TENANT_WIDE_WRITES.has(permission)
        ? new ApiError("FORBIDDEN", `${permission} changes what every project shares; your membership is limited to some projects`)
        : roleGrants && principal.kind === "api_key"
          ? new ApiError("INSUFFICIENT_SCOPE", `This API key lacks the scope ${permission}`)
          : new ApiError("FORBIDDEN", `Your role (${principal.role}) does not grant ${permission}`);
    }
    c.set("principal", principal);
    await next();
  });
}
