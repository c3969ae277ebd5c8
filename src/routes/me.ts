import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import { ROLES } from "../auth/permissions";
import { listSecurityEvents, SECURITY_EVENT_KINDS } from "../auth/security-events";
import { users } from "../db/control/schema";
import { controlDb } from "../db/router";
import { requireAuth } from "../middleware/auth";
import { ApiError } from "../lib/errors";
import { PageQuery } from "../lib/pagination";
import { bearer, errors, jsonResponse, MemberProjects, pageOf, renderUser, router, UserSchema } from "./openapi";

const MeSchema = z
  .object({
    user: UserSchema,
    tenant: z.object({ id: z.string(), slug: z.string(), name: z.string() }),
    role: z.enum(ROLES),
    projects: MemberProjects,
    permissions: z.array(z.string()),
    credential: z.object({ kind: z.enum(["access_token", "api_key"]), api_key_id: z.string().optional() }),
  })
  .openapi("Me");

const meRoute = createRoute({
  method: "get",
  path: "/v1/me",
  tags: ["Identity"],
  summary: "Who the credential belongs to, in this tenant",
  security: bearer,
  middleware: [requireAuth()] as const,
  responses: { 200: jsonResponse(MeSchema, "The caller"), ...errors(401, 403, 404) },
});

const SecurityEventSchema = z
  .object({
    id: z.string(),
    kind: z.enum(SECURITY_EVENT_KINDS),
    tenant: z.object({ id: z.string(), slug: z.string().nullable() }).openapi({ description: "Where it happened: any tenant, not only this one" }),
    client_address: z.string().nullable(),
    created_at: z.string(),
  })
  .openapi("SecurityEvent");

const securityEventsRoute = createRoute({
  method: "get",
  path: "/v1/me/security-events",
  tags: ["Identity"],
  summary: "What happened to your account in any tenant: failed sign-ins, invitations tried and accepted (90 days)",
  security: bearer,
  middleware: [requireAuth()] as const,
  request: { query: PageQuery },
  responses: { 200: jsonResponse(pageOf(SecurityEventSchema), "A page of events, newest first"), ...errors(400, 401, 403, 404) },
});

/** `GET /v1/me` and `GET /v1/me/security-events`. */
export const meRoutes = router()
  .openapi(securityEventsRoute, async (c) => {
    const { limit, cursor } = c.req.valid("query");
    return c.json(await listSecurityEvents(controlDb(c.env), c.var.principal.userId, limit, cursor), 200);
  })
  .openapi(meRoute, async (c) => {
    const p = c.var.principal;
    const user = await controlDb(c.env).select().from(users).where(eq(users.id, p.userId)).get();
    if (!user) throw new ApiError("INVALID_TOKEN", "The user behind this credential no longer exists");
    const t = c.var.tenant;
    return c.json(
      {
        user: renderUser(user),
        tenant: { id: t.id, slug: t.slug, name: t.name },
        role: p.role,
        projects: p.projects && [...p.projects],
        permissions: [...p.permissions].sort(),
        credential: p.kind === "api_key" ? { kind: "api_key" as const, api_key_id: p.keyId } : { kind: "access_token" as const },
      },
      200,
    );
  });
