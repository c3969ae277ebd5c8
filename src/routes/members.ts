import { createRoute, z } from "@hono/zod-openapi";
import { ROLES } from "../auth/permissions";
import { PageQuery } from "../lib/pagination";
import * as members from "../members/members";
import { atLeastOneOf, errors, guarded, jsonBody, jsonResponse, MemberProjects, pageOf, router } from "./openapi";

const MemberSchema = z
  .object({ user_id: z.string(), email: z.string(), name: z.string(), role: z.enum(ROLES), projects: MemberProjects, joined_at: z.string() })
  .openapi("Member");
const UserIdParam = z.object({ userId: z.string().min(1).max(64) });

const listMembers = createRoute({
  method: "get",
  path: "/v1/members",
  tags: ["Members"],
  summary: "List the tenant's members",
  ...guarded("members:read"),
  request: { query: PageQuery },
  responses: { 200: jsonResponse(pageOf(MemberSchema), "A page of members"), ...errors(400, 401, 403) },
});

const updateMember = createRoute({
  method: "patch",
  path: "/v1/members/{userId}",
  tags: ["Members"],
  summary: "Change a member's role or the projects they are limited to; only an owner grants or changes owner; the last owner stays",
  ...guarded("members:write"),
  request: {
    params: UserIdParam,
    body: jsonBody(
      z
        .object({ role: z.enum(ROLES).optional(), projects: MemberProjects.optional() })
        .refine((b) => b.role !== undefined || b.projects !== undefined, { message: "Change the role, the projects or both", path: ["role"] })
        .openapi("UpdateMember", atLeastOneOf({ role: null, projects: null })),
    ),
  },
  responses: { 200: jsonResponse(MemberSchema, "The member"), ...errors(400, 401, 403, 404, 409, 415) },
});

const removeMember = createRoute({
  method: "delete",
  path: "/v1/members/{userId}",
  tags: ["Members"],
  summary: "Remove a member: their sessions and API keys in this tenant end with it",
  ...guarded("members:write"),
  request: { params: UserIdParam },
  responses: { 204: { description: "Removed" }, ...errors(401, 403, 404, 409) },
});


const render = (m: members.Member) => ({
  user_id: m.userId,
  email: m.email,
  name: m.name,
  role: m.role,
  projects: m.projects === null ? null : [...m.projects],
  joined_at: m.joinedAt,
});

/** Members of the host's tenant. */
export const memberRoutes = router()
  .openapi(listMembers, async (c) => {
    const listed = await members.listMembers(c, c.req.valid("query"));
    return c.json({ data: listed.data.map(render), next_cursor: listed.next_cursor }, 200);
  })
  .openapi(updateMember, async (c) => c.json(render(await members.updateMember(c, c.req.valid("param").userId, c.req.valid("json"))), 200))
  .openapi(removeMember, async (c) => {
    await members.removeMember(c, c.req.valid("param").userId);
    return c.body(null, 204);
  });
