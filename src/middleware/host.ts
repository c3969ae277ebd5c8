import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../context";
import { resolveHost } from "../db/directory";
import { planOf } from "../db/plans";
import { tenantDb } from "../db/router";
import { REQUIRED_SCHEMA, schemaAtLeast } from "../db/migrations/apply";
import { refreshSchema } from "../db/migrations/rollouts";
import { ApiError } from "../lib/errors";
import { FIRST_SHARD } from "../shards/names";
import { forwardTo, platformShard } from "../shards/shards";
import { clientLimit, enforceLimits } from "./rate-limit";

/** Paths served only on the platform host (`BASE_DOMAIN`); every other `/v1` path is a tenant's. */
export function isPlatformPath(path: string): boolean {
  // Erasures outlive their subject (a person's account, a tenant): they are the platform's.
  return path === "/v1/signup" || path.startsWith("/v1/platform/") || path === "/v1/erasures" || path.startsWith("/v1/erasures/");
}

/** A DNS name or bracketed IPv6 address, with an optional port: no userinfo, spaces, commas or paths. */
const HOST_SYNTAX = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * The request's host. workerd builds the URL from the client's Host header (in production,
 * wrangler dev and an in-process test fetch alike), but a URL parser quietly drops userinfo
 * (`demo@acme` is `acme` to it), so the header itself must be a plain host or the request is refused.
 */
export function requestHost(req: Request): string {
  const url = new URL(req.url);
  for (const host of [req.headers.get("host"), url.username || url.password ? `${url.username}@${url.host}` : url.host]) {
    if (host !== null && !HOST_SYNTAX.test(host)) {
      throw new ApiError("VALIDATION_FAILED", "The Host header must be a plain host name, with an optional port", {
        errors: [{ in: "header", field: "host", message: "no userinfo, spaces, commas or paths" }],
      });
    }
  }
  return url.host;
}

/**
 * Binds a `/v1` request to its host: platform paths must arrive on the platform host,
 * tenant paths on a known tenant's host; a suspended tenant gets 403 TENANT_SUSPENDED. A request
 * for a tenant (or platform work) on another shard is forwarded to that shard's Worker.
 */
export function hostRouting() {
  return createMiddleware<AppEnv>(async function hostRouting(c, next) {
    const target = await resolveHost(c.env, requestHost(c.req.raw), c.var.config.TENANT_CACHE_TTL_SECONDS);
    if (isPlatformPath(c.req.path)) {
      if (target.kind !== "platform") throw new ApiError("NOT_FOUND", "This route is served on the platform host only");
      // Platform routes have no tenant to count against: signup and the operator API count per client address.
      const ip = c.req.header("cf-connecting-ip");
      if (ip) await enforceLimits(c, [clientLimit(ip, c.req.path === "/v1/signup")]);
      const elsewhere = await forwardTo(c.env, await platformShard(c.env, c.req.raw), c.req.raw, c.var.requestId);
      return elsewhere ?? next();
    }
    if (target.kind === "platform") throw new ApiError("NOT_FOUND", `Tenant routes are served on a tenant's host, such as {slug}.${c.var.config.BASE_DOMAIN}`);
    if (target.kind === "unknown") throw new ApiError("TENANT_NOT_FOUND", "No tenant is served at this host");
    // A tenant on another shard is served there, the rest of this chain included (a WebSocket too).
    const elsewhere = await forwardTo(c.env, target.tenant.shard ?? FIRST_SHARD, c.req.raw, c.var.requestId);
    if (elsewhere) return elsewhere;
    if (target.tenant.status === "suspended") throw new ApiError("TENANT_SUSPENDED", "This tenant is suspended; contact the platform operator");
    // A database behind the schema this code needs waits for its rollout. The recorded schema is
    // checked against the database itself before refusing (one read, only while the record says
    // behind), so a record that lags never refuses a database that is ready. Records cached before
    // the pool carried schemas have none: those databases were migrated before the deploy.
    if (target.tenant.schema !== undefined && !schemaAtLeast(target.tenant.schema, REQUIRED_SCHEMA)) {
      const actual = await refreshSchema(c.env, target.tenant.dbBinding, target.tenant.id);
      if (!schemaAtLeast(actual, REQUIRED_SCHEMA)) {
        throw new ApiError("SCHEMA_BEHIND", `This workspace's database is at ${actual ?? "no schema"} and is being upgraded to ${REQUIRED_SCHEMA}; try again shortly`, { headers: { "retry-after": "30" } });
      }
    }
    c.set("tenant", target.tenant);
    c.set("db", tenantDb(c.env, target.tenant));
    c.set("plan", await planOf(c.env, target.tenant.planId));
    // The tenant's budget is counted after authentication, so only its own members and keys spend it.
    return next();
  });
}
