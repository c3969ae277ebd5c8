import { type SQL, sql } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import type { Context } from "hono";
import type { AppEnv } from "../context";

/**
 * Project-level membership. A member may be limited to some projects (a client always is); what
 * lives in a project they are not assigned to does not exist for them: reads are 404 and lists leave
 * it out, exactly as another tenant's would. Every project-scoped read goes through these.
 */

/** The projects the caller is limited to, or null for every project (and for work no caller started: consumers, cron). */
export function reachableProjects(c: Context<AppEnv>): readonly string[] | null {
  return c.get("principal")?.projects ?? null;
}

/** Whether the caller reaches `projectId`. */
export function reaches(c: Context<AppEnv>, projectId: string): boolean {
  const projects = reachableProjects(c);
  return projects === null || projects.includes(projectId);
}

/** A condition keeping rows whose `column` (a project id) the caller reaches; none for a caller who reaches every project. */
export function withinReach(c: Context<AppEnv>, column: SQLiteColumn | SQL): SQL | undefined {
  const projects = reachableProjects(c);
  return projects === null ? undefined : sql`${column} IN (SELECT value FROM json_each(${JSON.stringify(projects)}))`;
}
