import { Scalar } from "@scalar/hono-api-reference";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { HTTPException } from "hono/http-exception";
import { routePath } from "hono/route";
import { ApiError, problemResponse } from "./lib/errors";
import { errorFields } from "./lib/log";
import { hostRouting } from "./middleware/host";
import { requestContext } from "./middleware/request-context";
import { agentRoutes } from "./routes/agents";
import { apiKeyRoutes } from "./routes/api-keys";
import { artifactRoutes } from "./routes/artifacts";
import { auditRoutes } from "./routes/audit";
import { conversationRoutes } from "./routes/conversations";
import { usageRoutes } from "./routes/usage";
import { authRoutes } from "./routes/auth";
import { invitationRoutes } from "./routes/invitations";
import { memberRoutes } from "./routes/members";
import { meRoutes } from "./routes/me";
import { router, withCommonResponses } from "./routes/openapi";
import { migrationRoutes } from "./routes/migrations";
import { platformRoutes } from "./routes/platform";
import { projectRoutes } from "./routes/projects";
import { promptRoutes } from "./routes/prompts";
import { runRoutes } from "./routes/runs";
import { documentRoutes } from "./routes/documents";
import { webhookMessageRoutes } from "./routes/webhook-messages";
import { campaignRoutes } from "./routes/campaigns";
import { postRoutes } from "./routes/posts";
import { ideaRoutes } from "./routes/ideas";
import { postReviewRoutes } from "./routes/post-reviews";
import { reviewLinkRoutes } from "./routes/review-links";
import { channelRoutes } from "./routes/channels";
import { personaRoutes } from "./routes/personas";
import { exportRoutes } from "./routes/exports";
import { erasureRoutes } from "./routes/erasures";
import { webhookEndpointRoutes } from "./routes/webhooks";
import { knowledgeRoutes } from "./routes/knowledge";
import { knowledgeSearchRoutes } from "./routes/knowledge-search";
import { signupRoutes } from "./routes/signup";
import { systemRoutes } from "./routes/system";
import { dispatch } from "./webhooks/dispatch";

/** Largest request body any route but an upload accepts. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** Uploads stream to R2 and check their own Content-Length limit: artifact versions and knowledge documents. */
const UPLOAD = /^\/v1\/(artifacts(\/[^/]+\/versions)?|knowledge-bases\/[^/]+\/documents)$/;

/**
 * The methods each registered path answers (HEAD with GET), as a lookup by request path. Built
 * once from the router's own table, so it cannot drift from the routes.
 */
function allowedMethods(routes: { method: string; path: string }[]): (path: string) => string[] {
  const byPattern = new Map<string, Set<string>>();
  for (const r of routes) {
    if (r.method === "ALL" || r.path.includes("*")) continue;
    const methods = byPattern.get(r.path) ?? new Set<string>();
    methods.add(r.method);
    if (r.method === "GET") methods.add("HEAD");
    byPattern.set(r.path, methods);
  }
  const compiled = [...byPattern].map(([pattern, methods]) => {
    const source = pattern.split(/(:[A-Za-z_]\w*)/).map((part) => (part.startsWith(":") ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))).join("");
    return { regex: new RegExp(`^${source}$`), methods: [...methods].sort() };
  });
  return (path) => [...new Set(compiled.filter((c) => c.regex.test(path)).flatMap((c) => c.methods))].sort();
}

/** Paths that are the API's (or its documents'): never the console's. */
const API_PATH = /^\/(v1|\.well-known|openapi\.json|health)(\/|$)/;
/** A page the console routes itself: no file extension. */
const isConsolePage = (path: string) => !/\.[a-z0-9]+$/i.test(path.split("/").at(-1) ?? "");

/** Builds the Worker's Hono app: middleware order, routes, OpenAPI document, error handling. */
export function createApp() {
  const app = router();

  app.use("*", requestContext());
  // Credentials travel in the Authorization header, never in cookies, so any origin may call the
  // API from a browser: a page can only use a token it already holds.
  app.use(
    "/v1/*",
    cors({
      origin: "*",
      allowHeaders: ["Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id", "Range", "If-Match", "If-None-Match", "If-Range", "Last-Event-ID"],
      allowMethods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
      exposeHeaders: ["X-Request-Id", "Retry-After", "WWW-Authenticate", "RateLimit", "RateLimit-Policy", "ETag", "Content-Range", "Accept-Ranges", "Idempotent-Replayed", "Location"],
      maxAge: 86400,
    }),
  );
  const limitBody = bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: (c) => problemResponse("PAYLOAD_TOO_LARGE", `Request bodies are limited to ${MAX_BODY_BYTES} bytes`, c.get("requestId")),
  });
  // Uploads stream to R2 with their own limits (artifacts 25 MiB, documents 10 MiB); everything else is JSON of at most 1 MiB.
  app.use("/v1/*", (c, next) => (c.req.method === "POST" && UPLOAD.test(c.req.path) ? next() : limitBody(c, next)));
  app.use("/v1/*", hostRouting());
  // The events a successful write put in the tenant's outbox go to its webhook endpoints right after
  // the response (the cron sweep catches any this misses).
  app.use("/v1/*", async (c, next) => {
    await next();
    const tenant = c.get("tenant");
    if (tenant && c.req.method !== "GET" && c.req.method !== "HEAD" && c.res.status < 400) {
      c.executionCtx.waitUntil(dispatch(c.env, tenant).catch((err) => c.var.log.error("webhooks.dispatch_failed", errorFields(err))));
    }
  });

  app.route("/", signupRoutes);
  app.route("/", platformRoutes);
  app.route("/", migrationRoutes);
  app.route("/", authRoutes);
  app.route("/", meRoutes);
  app.route("/", memberRoutes);
  app.route("/", invitationRoutes);
  app.route("/", apiKeyRoutes);
  app.route("/", projectRoutes);
  app.route("/", auditRoutes);
  app.route("/", conversationRoutes);
  app.route("/", usageRoutes);
  app.route("/", agentRoutes);
  app.route("/", promptRoutes);
  app.route("/", runRoutes);
  app.route("/", artifactRoutes);
  app.route("/", knowledgeSearchRoutes);
  app.route("/", knowledgeRoutes);
  app.route("/", documentRoutes);
  app.route("/", webhookEndpointRoutes);
  app.route("/", webhookMessageRoutes);
  app.route("/", campaignRoutes);
  app.route("/", postRoutes);
  app.route("/", ideaRoutes);
  app.route("/", postReviewRoutes);
  app.route("/", reviewLinkRoutes);
  app.route("/", channelRoutes);
  app.route("/", personaRoutes);
  app.route("/", exportRoutes);
  app.route("/", erasureRoutes);

  app.route("/", systemRoutes);

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    description: "An access token (JWT from login/refresh) or an API key (`tsk_…`), for the tenant at the request's host.",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "platformAdmin", { type: "http", scheme: "bearer", description: "PLATFORM_ADMIN_TOKEN" });
  // The document as the routes declare it, plus the answers every route of its kind can give
  // (host, limits, credentials, bodies), so it names every status the API really sends.
  app.get("/openapi.json", (c) => {
    const base = c.var.config.BASE_DOMAIN;
    const declared = app.getOpenAPI31Document({
      openapi: "3.1.0",
      servers: [
        { url: `https://{tenant}.${base}`, description: "A tenant's API", variables: { tenant: { default: "demo", description: "The tenant's slug" } } },
        { url: `https://${base}`, description: "The platform host: signup and the operator API" },
      ],
      info: {
        title: "Tessera API",
        version: "0.1.0",
        description: `Multi-tenant AI content platform. Tenant routes are served on \`{slug}.${base}\` or a tenant's custom hostname; signup and the platform operator API on \`${base}\`. Every error is application/problem+json (RFC 9457).`,
      },
    });
    return c.json(withCommonResponses(declared));
  });
  // The reference's script is served beside the console from the installed package (console/vite.config.ts), not a CDN: /docs works offline.
  app.get("/docs", Scalar({ url: "/openapi.json", pageTitle: "Tessera API", cdn: "/docs/scalar.js" }));

  const methodsOf = allowedMethods(app.routes);
  app.notFound(async (c) => {
    // Outside the API, a GET is the console's: its file if there is one (the asset router serves
    // those before the Worker in production; a request that reaches the Worker anyway gets the same),
    // else for the console's own pages (/projects, …: no file) the app page, which routes in the
    // browser. A missing file (a name with an extension) stays a 404, never the app page.
    if ((c.req.method === "GET" || c.req.method === "HEAD") && !API_PATH.test(c.req.path)) {
      const asset = await c.env.ASSETS.fetch(c.req.raw);
      if (asset.status !== 404) return asset;
      if (isConsolePage(c.req.path)) return c.env.ASSETS.fetch(new URL("/", c.req.url));
    }
    // A path that exists under other methods is a 405 naming them (TRACE included), not a 404.
    const allow = methodsOf(c.req.path);
    if (allow.length) {
      return problemResponse("METHOD_NOT_ALLOWED", `${c.req.method} is not allowed here; use ${allow.join(", ")}`, c.get("requestId"), { headers: { Allow: allow.join(", ") } });
    }
    return problemResponse("NOT_FOUND", `No route ${c.req.method} ${c.req.path}`, c.get("requestId"));
  });
  app.onError((err, c) => {
    const requestId = c.get("requestId") ?? "unknown";
    if (err instanceof ApiError) return problemResponse(err.code, err.message, requestId, { errors: err.errors, headers: err.headers });
    // Hono's own validators throw these before our schemas see the body.
    if (err instanceof HTTPException && err.status === 400) return problemResponse("MALFORMED_JSON", "The request body is not valid JSON", requestId);
    if (err instanceof HTTPException && err.status === 413) return problemResponse("PAYLOAD_TOO_LARGE", err.message, requestId);
    if (err instanceof HTTPException && err.status === 415) {
      return problemResponse("UNSUPPORTED_MEDIA_TYPE", "Send the body as JSON with Content-Type: application/json", requestId);
    }
    c.get("log")?.error("unhandled", { ...errorFields(err), method: c.req.method, route: routePath(c, -1) });
    return problemResponse("INTERNAL_ERROR", "Something went wrong on our side; quote the request id if you report it", requestId);
  });
  return app;
}
