import { createRoute, z } from "@hono/zod-openapi";
import { JURISDICTIONS } from "../db/router";
import { signUp } from "../tenants/signup";
import { Email, errors, jsonBody, jsonResponse, NonBlank, Password, PersonName, renderTenant, renderUser, router, Slug, TenantSchema, TokenPairSchema, UserSchema } from "./openapi";

/** Slugs that would shadow platform hosts. */
const RESERVED_SLUGS = new Set(["www", "api", "app", "admin", "platform", "docs", "status", "mail", "console", "static", "assets", "auth"]);

const SignupBody = z
  .object({
    tenant: z.object({
      name: NonBlank(120),
      slug: Slug.refine((s) => !RESERVED_SLUGS.has(s), "reserved for the platform"),
      jurisdiction: z.enum(JURISDICTIONS).default("default").openapi({ description: "Where its data lives: its database comes from this jurisdiction's pool" }),
    }),
    user: z.object({ email: Email, password: Password, name: PersonName }),
  })
  .openapi("SignupRequest");

const SignupResponse = TokenPairSchema.extend({ tenant: TenantSchema, user: UserSchema }).openapi("SignupResponse");

const signupRoute = createRoute({
  method: "post",
  path: "/v1/signup",
  tags: ["Platform"],
  summary: "Create a tenant and its owner",
  description: "Served on the platform host. Claims a free tenant database from the chosen jurisdiction's pool; when none is free the answer is 503 naming the jurisdiction and nothing is written.",
  request: { body: jsonBody(SignupBody) },
  responses: { 201: jsonResponse(SignupResponse, "Tenant, owner and tokens"), ...errors(400, 409, 413, 415, 503) },
});

/** `POST /v1/signup`: a tenant, its owner and their first session, written in one batch. */
export const signupRoutes = router().openapi(signupRoute, async (c) => {
  const { tokens, tenant, user } = await signUp(c, c.req.valid("json"));
  return c.json({ ...tokens, tenant: renderTenant(tenant), user: renderUser(user) }, 201);
});
