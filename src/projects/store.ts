import { and, eq, sql } from "drizzle-orm";
import type { Context } from "hono";
import { reachableProjects, reaches, withinReach } from "../auth/reach";
import type { AppEnv } from "../context";
import { auditChange } from "../db/audit";
import { insertWhere } from "../db/insert-where";
import { findOwned, listOwned } from "../db/owned";
import { projects } from "../db/tenant/schema";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";

export type ProjectRow = typeof projects.$inferSelect;

/** This tenant's project `id`, if the caller reaches it (a member limited to other projects finds nothing). */
const isProject = (c: Context<AppEnv>, id: string) => and(eq(projects.id, id), eq(projects.tenantId, c.var.tenant.id), withinReach(c, projects.id));

/** Making or deleting a project changes the tenant's set of projects: not for a member limited to some of them. */
function assertTenantWide(c: Context<AppEnv>, doing: string) {
  if (reachableProjects(c) !== null) throw new ApiError("FORBIDDEN", `Your membership is limited to some projects; it cannot ${doing} a project`);
}

/** The project a body names, or a 404 naming the field: resources live inside a project of this tenant. */
export async function requireProject(c: Context<AppEnv>, projectId: string, where: "body" | "query" = "body"): Promise<string> {
  const row = await c.var.db.select({ id: projects.id }).from(projects).where(isProject(c, projectId)).get();
  if (!row) throw new ApiError("NOT_FOUND", `No project ${projectId}`, { errors: [{ in: where, field: "project_id", message: "no such project" }] });
  return row.id;
}

export async function findProject(c: Context<AppEnv>, id: string): Promise<ProjectRow> {
  const row = await findOwned(c.var.db, projects, c.var.tenant.id, id, "project");
  if (!reaches(c, row.id)) throw new ApiError("NOT_FOUND", `No project ${id}`);
  return row;
}

export const listProjects = <U>(c: Context<AppEnv>, q: { limit: number; cursor?: string }, render: (row: ProjectRow) => U) =>
  listOwned(c.var.db, projects, c.var.tenant.id, { ...q, prefix: "prj", filters: [withinReach(c, projects.id)] }, render);

/** Creates a project within the plan's limit, counted inside the insert so concurrent creates cannot pass it together. */
export async function createProject(c: Context<AppEnv>, body: { name: string; description?: string | null }): Promise<ProjectRow> {
  assertTenantWide(c, "create");
  const { db, tenant, plan } = c.var;
  const id = newId("prj");
  const now = new Date().toISOString();
  const row = { id, tenantId: tenant.id, name: body.name, description: body.description ?? null, createdBy: c.var.principal.userId, createdAt: now, updatedAt: now };
  const [rows] = await db.batch([
    insertWhere(db, projects, row, sql`(SELECT count(*) FROM ${projects} WHERE ${projects.tenantId} = ${tenant.id}) < ${plan.projects}`).returning(),
    auditChange(c, { action: "project.created", resourceType: "project", resourceId: id, details: { name: body.name } }),
  ]);
  if (!rows[0]) throw new ApiError("PLAN_LIMIT", `The ${plan.name} plan allows ${plan.projects} projects; delete one or upgrade the plan`);
  return rows[0];
}

export async function updateProject(c: Context<AppEnv>, id: string, body: { name?: string; description?: string | null }): Promise<ProjectRow> {
  const db = c.var.db;
  const [rows] = await db.batch([
    db
      .update(projects)
      .set({ ...(body.name !== undefined && { name: body.name }), ...(body.description !== undefined && { description: body.description }), updatedAt: new Date().toISOString() })
      .where(isProject(c, id))
      .returning(),
    auditChange(c, { action: "project.updated", resourceType: "project", resourceId: id, details: { fields: Object.keys(body) } }),
  ]);
  if (!rows[0]) throw new ApiError("NOT_FOUND", `No project ${id}`);
  return rows[0];
}

export async function deleteProject(c: Context<AppEnv>, id: string): Promise<void> {
  assertTenantWide(c, "delete");
  const db = c.var.db;
  const [deleted] = await db.batch([
    db.delete(projects).where(isProject(c, id)).returning({ id: projects.id }),
    auditChange(c, { action: "project.deleted", resourceType: "project", resourceId: id }),
  ]);
  if (!deleted[0]) throw new ApiError("NOT_FOUND", `No project ${id}`);
}
