import { createRoute, z } from "@hono/zod-openapi";
import { publicJwks } from "../auth/tokens";
import { tokenConfig } from "../middleware/auth";
import { jsonResponse, router } from "./openapi";

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

/** Routes served on every host: health and the token verification keys. */
export const systemRoutes = router()
  .openapi(health, (c) => c.json({ status: "ok" as const, providers: { ai: c.var.config.AI_PROVIDER, vectors: c.var.config.VECTOR_PROVIDER, publisher: c.var.config.PUBLISHER } }, 200))
  .openapi(jwks, async (c) => {
    c.header("Cache-Control", "public, max-age=300");
    return c.json(await publicJwks(tokenConfig(c)), 200);
  });
