import { and, eq } from "drizzle-orm";
import type { Context } from "hono";
import type { AppEnv } from "../context";
import { tenantDb } from "../db/router";
import { projects } from "../db/tenant/schema";
import { ApiError } from "../lib/errors";

/** The project a body names, or a 404 naming the field: resources live inside a project of this tenant. */
export async function requireProject(c: Context<AppEnv>, projectId: string, where: "body" | "query" = "body"): Promise<string> {
  const tenant = c.var.tenant;
  const row = await tenantDb(c.env, tenant)
    .select({ id: projects.id })
    .from(projects)
    .where(and(eq(projects.id, projectId), eq(projects.tenantId, tenant.id)))
    .get();
  if (!row) throw new ApiError("NOT_FOUND", `No project ${projectId}`, { errors: [{ in: where, field: "project_id", message: "no such project" }] });
  return row.id;
}
