import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, lt, sql } from "drizzle-orm";
import { projects } from "../db/tenant/schema";
import type { Context } from "hono";
import type { AppEnv } from "../context";
import { actorOf, auditAfterChange, type AuditEntry } from "../db/audit";
import { tenantDb, type TenantDb } from "../db/router";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { decodeCursor, page, PageQuery } from "../lib/pagination";
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

const render = (p: typeof projects.$inferSelect): z.infer<typeof ProjectSchema> => ({
  id: p.id,
  name: p.name,
  description: p.description,
  created_by: p.createdBy,
  created_at: p.createdAt,
  updated_at: p.updatedAt,
});

const notFound = (id: string) => new ApiError("NOT_FOUND", `No project ${id}`);

/** The audit entry for a project change, written in the change's batch and only if it changed a row. */
const audit = (c: Context<AppEnv>, db: TenantDb, entry: Omit<AuditEntry, "resourceType">) =>
  auditAfterChange(db, c.var.tenant.id, actorOf(c.var.principal), c.var.requestId, { ...entry, resourceType: "project" });

/** Projects, in the tenant's own database; every query also filters on tenant_id. */
export const projectRoutes = router()
  .openapi(createProject, async (c) => {
    const body = c.req.valid("json");
    const tenant = c.var.tenant;
    const db = tenantDb(c.env, tenant);
    const plan = c.var.plan;
    const id = newId("prj");
    const now = new Date().toISOString();
    const [rows] = await db.batch([
      // The plan's limit is checked inside the insert, so concurrent creates cannot pass it together.
      db
        .insert(projects)
        .select(
          sql`SELECT ${id}, ${tenant.id}, ${body.name}, ${body.description ?? null}, ${c.var.principal.userId}, ${now}, ${now}
              WHERE (SELECT count(*) FROM projects WHERE tenant_id = ${tenant.id}) < ${plan.projects}`,
        )
        .returning(),
      audit(c, db, { action: "project.created", resourceId: id, details: { name: body.name } }),
    ]);
    if (!rows[0]) throw new ApiError("PLAN_LIMIT", `The ${plan.name} plan allows ${plan.projects} projects; delete one or upgrade the plan`);
    return c.json(render(rows[0]), 201);
  })
  .openapi(listProjects, async (c) => {
    const { limit, cursor } = c.req.valid("query");
    const tenant = c.var.tenant;
    const rows = await tenantDb(c.env, tenant)
      .select()
      .from(projects)
      .where(and(eq(projects.tenantId, tenant.id), cursor ? lt(projects.id, decodeCursor(cursor, "prj")) : undefined))
      .orderBy(desc(projects.id))
      .limit(limit + 1);
    return c.json(page(rows, limit, render), 200);
  })
  .openapi(getProject, async (c) => {
    const { id } = c.req.valid("param");
    const tenant = c.var.tenant;
    const row = await tenantDb(c.env, tenant)
      .select()
      .from(projects)
      .where(and(eq(projects.id, id), eq(projects.tenantId, tenant.id)))
      .get();
    if (!row) throw notFound(id);
    return c.json(render(row), 200);
  })
  .openapi(updateProject, async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const tenant = c.var.tenant;
    const db = tenantDb(c.env, tenant);
    const [rows] = await db.batch([
      db
        .update(projects)
        .set({ ...(body.name !== undefined && { name: body.name }), ...(body.description !== undefined && { description: body.description }), updatedAt: new Date().toISOString() })
        .where(and(eq(projects.id, id), eq(projects.tenantId, tenant.id)))
        .returning(),
      audit(c, db, { action: "project.updated", resourceId: id, details: { fields: Object.keys(body) } }),
    ]);
    if (!rows[0]) throw notFound(id);
    return c.json(render(rows[0]), 200);
  })
  .openapi(deleteProject, async (c) => {
    const { id } = c.req.valid("param");
    const tenant = c.var.tenant;
    const db = tenantDb(c.env, tenant);
    const [deleted] = await db.batch([
      db.delete(projects).where(and(eq(projects.id, id), eq(projects.tenantId, tenant.id))).returning({ id: projects.id }),
      audit(c, db, { action: "project.deleted", resourceId: id }),
    ]);
    if (!deleted[0]) throw notFound(id);
    return c.body(null, 204);
  });

