import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { routePath } from "hono/route";
import type { AppEnv, Principal } from "../context";
import { loadConfig } from "../env";
import { newId } from "../lib/ids";
import { createLogger } from "../lib/log";
import { limitHeaders } from "./rate-limit";

const INCOMING_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/**
 * First middleware: a request id (the caller's `X-Request-Id` when it is sane), a logger
 * bound to it, the checked config, `X-Request-Id` on every response, and one access-log line.
 */
export function requestContext() {
  return createMiddleware<AppEnv>(async function requestContext(c, next) {
    const started = Date.now();
    const incoming = c.req.header("x-request-id");
    const requestId = incoming && INCOMING_ID.test(incoming) ? incoming : newId("req");
    const log = createLogger({ request_id: requestId });
    c.set("requestId", requestId);
    c.set("log", log);
    c.set("config", loadConfig(c.env));
    await next();
    addHeaders(c, { "X-Request-Id": requestId, ...limitHeaders(c) });
    log.info("request", {
      method: c.req.method,
      // The route's pattern, never the path: paths carry secrets (an invitation's token) and ids.
      route: routePath(c, -1),
      host: c.req.header("host"),
      status: c.res.status,
      duration_ms: Date.now() - started,
      tenant_id: c.get("tenant")?.id,
      actor: actorId(c.get("principal")),
    });
  });
}

function actorId(p: Principal | undefined): string | undefined {
  return p ? (p.kind === "api_key" ? p.keyId : p.userId) : undefined;
}

/**
 * Sets headers on the finished response in place: `c.header()` after the handler copies the whole
 * Response once per header. A response whose headers cannot change (one passed through from a
 * fetch or a Durable Object) is copied once.
 */
function addHeaders(c: Context<AppEnv>, headers: Record<string, string>) {
  let res = c.res;
  try {
    for (const [name, value] of Object.entries(headers)) res.headers.set(name, value);
  } catch {
    res = new Response(res.body, res);
    for (const [name, value] of Object.entries(headers)) res.headers.set(name, value);
    c.res = res;
  }
}
