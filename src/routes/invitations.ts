import { createRoute, z } from "@hono/zod-openapi";
import { ROLES } from "../auth/permissions";
import { PageQuery } from "../lib/pagination";
import * as invitationsService from "../members/invitations";
import { publicRoute } from "../middleware/auth";
import { Email, errors, MemberProjects, guarded, jsonBody, jsonResponse, pageOf, Password, PersonName, renderUser, router, TokenPairSchema, UserSchema } from "./openapi";

const InvitationCreated = z
  .object({ id: z.string(), email: z.string(), role: z.enum(ROLES), projects: MemberProjects, token: z.string(), expires_at: z.string() })
  .openapi("InvitationCreated");

const createInvitation = createRoute({
  method: "post",
  path: "/v1/invitations",
  tags: ["Members"],
  summary: "Invite someone by email; the single-use token is shown once",
  ...guarded("invitations:write"),
  request: { body: jsonBody(z.object({ email: Email, role: z.enum(ROLES), projects: MemberProjects.optional() })) },
  responses: { 201: jsonResponse(InvitationCreated, "The invitation and its token"), ...errors(400, 401, 403, 409, 415) },
});

const PendingInvitation = z
  .object({ id: z.string(), email: z.string(), role: z.enum(ROLES), projects: MemberProjects, invited_by: z.string(), expires_at: z.string(), created_at: z.string() })
  .openapi("PendingInvitation");

const listInvitations = createRoute({
  method: "get",
  path: "/v1/invitations",
  tags: ["Members"],
  summary: "List invitations not yet accepted (expired ones included until revoked)",
  ...guarded("invitations:write"),
  request: { query: PageQuery },
  responses: { 200: jsonResponse(pageOf(PendingInvitation), "A page of invitations"), ...errors(400, 401, 403) },
});

const revokeInvitation = createRoute({
  method: "delete",
  path: "/v1/invitations/{id}",
  tags: ["Members"],
  summary: "Revoke an invitation; its token stops working",
  ...guarded("invitations:write"),
  request: { params: z.object({ id: z.string().min(1).max(64) }) },
  responses: { 204: { description: "Revoked" }, ...errors(401, 403, 404) },
});

const acceptInvitation = createRoute({
  method: "post",
  path: "/v1/invitations/{token}/accept",
  tags: ["Members"],
  summary: "Accept an invitation: join the tenant and get tokens",
  description:
    "A new user sets their name and password; an existing user proves theirs. A wrong password spends the invitation (ask for a new one), counts against the account's failed sign-ins, and shows in that account's security events.",
  middleware: [publicRoute()] as const,
  request: {
    params: z.object({ token: z.string().min(1).max(128) }),
    body: jsonBody(z.object({ name: PersonName, password: Password })),
  },
  responses: { 200: jsonResponse(TokenPairSchema.extend({ user: UserSchema }), "Joined"), ...errors(400, 401, 403, 404, 409, 410, 415, 429) },
});

/** Invitations into the host's tenant. */
export const invitationRoutes = router()
  .openapi(createInvitation, async (c) => c.json(await invitationsService.createInvitation(c, c.req.valid("json")), 201))
  .openapi(listInvitations, async (c) => c.json(await invitationsService.listInvitations(c, c.req.valid("query")), 200))
  .openapi(revokeInvitation, async (c) => {
    await invitationsService.revokeInvitation(c, c.req.valid("param").id);
    return c.body(null, 204);
  })
  .openapi(acceptInvitation, async (c) => {
    const { tokens, user } = await invitationsService.acceptInvitation(c, c.req.valid("param").token, c.req.valid("json"));
    return c.json({ ...tokens, user: renderUser(user) }, 200);
  });
