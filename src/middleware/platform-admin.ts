import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../context";
import { timingSafeEqualString } from "../lib/crypto";
import { ApiError } from "../lib/errors";

/** Requires `Authorization: Bearer <PLATFORM_ADMIN_TOKEN>`; any tenant credential is simply not it (401). */
export function requirePlatformAdmin() {
  return createMiddleware<AppEnv>(async function requirePlatformAdmin(c, next) {
    const header = c.req.header("authorization");
    const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!match) throw new ApiError("UNAUTHENTICATED", "Send Authorization: Bearer <platform admin token>", { headers: { "WWW-Authenticate": 'Bearer realm="tessera-platform"' } });
    if (!timingSafeEqualString(match[1]!, c.var.config.PLATFORM_ADMIN_TOKEN)) {
      throw new ApiError("INVALID_TOKEN", "Not the platform admin token", { headers: { "WWW-Authenticate": 'Bearer realm="tessera-platform", error="invalid_token"' } });
    }
    await next();
  });
}
