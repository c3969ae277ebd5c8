import { createRoute, z } from "@hono/zod-openapi";
import { PageQuery } from "../lib/pagination";
import * as projects from "../projects/store";
import { errors, guarded, jsonBody, jsonResponse, NonBlank, pageOf, router } from "./openapi";

const ProjectSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    description: z.string().nullable(),
    created_by: z.string(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("Project");

const Name = NonBlank(200);
const Description = z.string().max(5000).nullable();
const IdParam = z.object({ id: z.string().min(1).max(64) });

const createProject = createRoute({
  method: "post",
  path: "/v1/projects",
  tags: ["Projects"],
  summary: "Create a project",
  ...guarded("projects:write"),
  request: { body: jsonBody(z.object({ name: Name, description: Description.optional() }).openapi("CreateProject")) },
  responses: { 201: jsonResponse(ProjectSchema, "The project"), ...errors(400, 401, 403, 413, 415) },
});

const listProjects = createRoute({
  method: "get",
  path: "/v1/projects",
  tags: ["Projects"],
  summary: "List projects, newest first",
  ...guarded("projects:read"),
  request: { query: PageQuery },
  responses: { 200: jsonResponse(pageOf(ProjectSchema), "A page of projects"), ...errors(400, 401, 403) },
});

const getProject = createRoute({
  method: "get",
  path: "/v1/projects/{id}",
  tags: ["Projects"],
  summary: "Get a project",
  ...guarded("projects:read"),
  request: { params: IdParam },
  responses: { 200: jsonResponse(ProjectSchema, "The project"), ...errors(401, 403, 404) },
});

const updateProject = createRoute({
  method: "patch",
  path: "/v1/projects/{id}",
  tags: ["Projects"],
  summary: "Change a project's name or description",
  ...guarded("projects:write"),
  request: {
    params: IdParam,
    body: jsonBody(
      z
        .object({ name: Name.optional(), description: Description.optional() })
        .refine((b) => b.name !== undefined || b.description !== undefined, "give name or description")
        .openapi("UpdateProject", { anyOf: [{ required: ["name"] }, { required: ["description"] }] }),
    ),
  },
  responses: { 200: jsonResponse(ProjectSchema, "The project"), ...errors(400, 401, 403, 404, 415) },
});

const deleteProject = createRoute({
  method: "delete",
  path: "/v1/projects/{id}",
  tags: ["Projects"],
  summary: "Delete a project",
  ...guarded("projects:write"),
  request: { params: IdParam },
  responses: { 204: { description: "Deleted" }, ...errors(401, 403, 404) },
});

const render = (p: projects.ProjectRow): z.infer<typeof ProjectSchema> => ({
  id: p.id,
  name: p.name,
  description: p.description,
  created_by: p.createdBy,
  created_at: p.createdAt,
  updated_at: p.updatedAt,
});

/** Projects, in the tenant's own database; every query also filters on tenant_id. */
export const projectRoutes = router()
  .openapi(createProject, async (c) => c.json(render(await projects.createProject(c, c.req.valid("json"))), 201))
  .openapi(listProjects, async (c) => c.json(await projects.listProjects(c, c.req.valid("query"), render), 200))
  .openapi(getProject, async (c) => c.json(render(await projects.findProject(c, c.req.valid("param").id)), 200))
  .openapi(updateProject, async (c) => c.json(render(await projects.updateProject(c, c.req.valid("param").id, c.req.valid("json"))), 200))
  .openapi(deleteProject, async (c) => {
    await projects.deleteProject(c, c.req.valid("param").id);
    return c.body(null, 204);
  });
