import { createRoute, z } from "@hono/zod-openapi";
import { and, eq } from "drizzle-orm";
import { endSession, RefreshTokenReused, rotateSession, startSession } from "../auth/sessions";
import { memberships, users } from "../db/control/schema";
import { controlDb } from "../db/router";
import { startAttempt } from "../auth/attempts";
import { recordSecurityEvent } from "../auth/security-events";
import { publicRoute, tokenConfig } from "../middleware/auth";
import { clientAddress } from "../middleware/rate-limit";
import { verifyPassword } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { recordAudit } from "../db/audit";
import { Email, TokenPairSchema, errors, jsonBody, jsonResponse, router } from "./openapi";

const RefreshBody = z.object({ refresh_token: z.string().min(1).max(200) });

const login = createRoute({
  method: "post",
  path: "/v1/auth/login",
  tags: ["Identity"],
  summary: "Log in to this tenant with email and password",
  middleware: [publicRoute()] as const,
  request: { body: jsonBody(z.object({ email: Email, password: z.string().min(1).max(256) }).openapi("LoginRequest")) },
  responses: { 200: jsonResponse(TokenPairSchema.openapi("TokenPair"), "Tokens"), ...errors(400, 401, 415, 429) },
});

const refresh = createRoute({
  method: "post",
  path: "/v1/auth/refresh",
  tags: ["Identity"],
  summary: "Spend a refresh token for a new pair; reusing a spent one revokes its login",
  middleware: [publicRoute()] as const,
  request: { body: jsonBody(RefreshBody) },
  responses: { 200: jsonResponse(TokenPairSchema, "New tokens"), ...errors(400, 401, 415, 429) },
});

const logout = createRoute({
  method: "post",
  path: "/v1/auth/logout",
  tags: ["Identity"],
  summary: "End the login a refresh token belongs to",
  middleware: [publicRoute()] as const,
  request: { body: jsonBody(RefreshBody) },
  responses: { 204: { description: "Logged out" }, ...errors(400, 415, 429) },
});

/** Login, refresh and logout on a tenant's host. */
export const authRoutes = router()
  .openapi(login, async (c) => {
    const { email, password } = c.req.valid("json");
    const db = controlDb(c.env);
    const tenantId = c.var.tenant.id;
    const attempt = await startAttempt(c.env, email);
    const row = await db
      .select({ id: users.id, passwordHash: users.passwordHash, role: memberships.role })
      .from(users)
      .leftJoin(memberships, and(eq(memberships.userId, users.id), eq(memberships.tenantId, tenantId)))
      .where(eq(users.email, email))
      .get();
    // Always hash, so unknown emails and non-members take as long as a wrong password.
    const ok = await verifyPassword(password, row?.passwordHash);
    if (!ok || !row?.role) {
      // A wrong password for a real account is the account owner's business, whichever tenant it came through.
      if (row && !ok) await recordSecurityEvent(db, { userId: row.id, tenantId, kind: "login_failed", clientAddress: clientAddress(c) });
      throw new ApiError("INVALID_CREDENTIALS", "Email or password is wrong, or the user is not a member of this tenant");
    }
    await attempt.succeeded();
    const session = await startSession(db, tokenConfig(c), { userId: row.id, tenantId, role: row.role });
    await db.batch([...session.statements]);
    await recordAudit(c, { action: "auth.login", resourceType: "user", resourceId: row.id }, { actor: { type: "user", id: row.id } });
    return c.json(session.tokens, 200);
  })
  .openapi(refresh, async (c) => {
    try {
      return c.json(await rotateSession(controlDb(c.env), tokenConfig(c), c.var.tenant.id, c.req.valid("json").refresh_token), 200);
    } catch (err) {
      if (err instanceof RefreshTokenReused) {
        await recordAudit(c, { action: "auth.refresh_token_reused", resourceType: "user", resourceId: err.userId }, { actor: { type: "user", id: err.userId } });
      }
      throw err;
    }
  })
  .openapi(logout, async (c) => {
    const userId = await endSession(controlDb(c.env), c.var.tenant.id, c.req.valid("json").refresh_token);
    if (userId) await recordAudit(c, { action: "auth.logout", resourceType: "user", resourceId: userId }, { actor: { type: "user", id: userId } });
    return c.body(null, 204);
  });
