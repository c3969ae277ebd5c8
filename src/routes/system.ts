import { createRoute, z } from "@hono/zod-openapi";
import { publicJwks } from "../auth/tokens";
import { tokenConfig } from "../middleware/auth";
import { resolveHost } from "../db/directory";
import { ApiError } from "../lib/errors";
import { requestHost } from "../middleware/host";
import { errors, jsonResponse, router } from "./openapi";

const health = createRoute({
  method: "get",
  path: "/health",
  tags: ["System"],
  summary: "Liveness, and which AI and vector providers answer (local or cloudflare)",
  responses: {
    200: jsonResponse(
      z.object({ status: z.literal("ok"), providers: z.object({ ai: z.enum(["local", "cloudflare"]), vectors: z.enum(["local", "cloudflare"]), publisher: z.enum(["local"]) }) }).openapi("Health"),
      "Up",
    ),
  },
});

const jwks = createRoute({
  method: "get",
  path: "/.well-known/jwks.json",
  tags: ["System"],
  summary: "Public keys that verify access tokens",
  responses: {
    200: jsonResponse(
      z.object({ keys: z.array(z.object({ kty: z.string(), crv: z.string(), kid: z.string(), x: z.string(), y: z.string(), alg: z.string(), use: z.string() }).partial()) }).openapi("Jwks"),
      "JWKS",
    ),
  },
});

const host = createRoute({
  method: "get",
  path: "/.well-known/tessera-host",
  tags: ["System"],
  summary: "Where this host leads: the platform itself, or which tenant (what the console shows here)",
  responses: {
    200: jsonResponse(
      z
        .discriminatedUnion("kind", [
          z.object({ kind: z.literal("platform"), base_domain: z.string() }),
          z.object({ kind: z.literal("tenant"), base_domain: z.string(), tenant: z.object({ id: z.string(), slug: z.string(), name: z.string() }) }),
        ])
        .openapi("HostTarget"),
      "This host's place",
    ),
    ...errors(404),
  },
});

/** Routes served on every host: health, the token verification keys, and what the host is. */
export const systemRoutes = router()
  .openapi(health, (c) => c.json({ status: "ok" as const, providers: { ai: c.var.config.AI_PROVIDER, vectors: c.var.config.VECTOR_PROVIDER, publisher: c.var.config.PUBLISHER } }, 200))
  .openapi(jwks, async (c) => {
    c.header("Cache-Control", "public, max-age=300");
    return c.json(await publicJwks(tokenConfig(c)), 200);
  })
  .openapi(host, async (c) => {
    const base = c.var.config.BASE_DOMAIN;
    const target = await resolveHost(c.env, requestHost(c.req.raw), c.var.config.TENANT_CACHE_TTL_SECONDS);
    if (target.kind === "unknown") throw new ApiError("TENANT_NOT_FOUND", "No tenant is served at this host");
    if (target.kind === "platform") return c.json({ kind: "platform" as const, base_domain: base }, 200);
    const t = target.tenant;
    return c.json({ kind: "tenant" as const, base_domain: base, tenant: { id: t.id, slug: t.slug, name: t.name } }, 200);
  });
