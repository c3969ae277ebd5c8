import { and, asc, eq, sql } from "drizzle-orm";
import { withinReach } from "../auth/reach";
import type { Context } from "hono";
import type { AppEnv } from "../context";
import { auditChange } from "../db/audit";
import { insertWhere, insertWithin } from "../db/insert-where";
import { assertReachable, findReachable, listReachable } from "../db/owned";
import { agents, conversations, personas, personaVersions } from "../db/tenant/schema";
import { reconfigureConversations, reconfigureNaming } from "../conversations/store";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { requireProject } from "../projects/store";

export type PersonaRow = typeof personas.$inferSelect;
export type PersonaVersionRow = typeof personaVersions.$inferSelect;

/** The most personas a project holds, and versions a persona keeps. */
export const MAX_PERSONAS_PER_PROJECT = 100;
export const MAX_PERSONA_VERSIONS = 1000;

/** A version's content as the API takes it. */
export interface PersonaContent {
  voice: string;
  audience?: string | null;
  dos?: string[];
  donts?: string[];
  examples?: string[];
  banned_words?: string[];
}

export const findPersona = (c: Context<AppEnv>, id: string) => findReachable(c, personas, id, "persona");

export const listPersonas = <U>(c: Context<AppEnv>, q: { limit: number; cursor?: string; project_id?: string }, render: (row: PersonaRow) => U) =>
  listReachable(c, personas, { ...q, prefix: "psn", filters: [q.project_id ? eq(personas.projectId, q.project_id) : undefined] }, render);

const versionRow = (tenantId: string, personaId: string, version: number | ReturnType<typeof sql>, body: PersonaContent, userId: string, now: string) => ({
  tenantId,
  personaId,
  version,
  voice: body.voice,
  audience: body.audience ?? null,
  dos: JSON.stringify(body.dos ?? []),
  donts: JSON.stringify(body.donts ?? []),
  examples: JSON.stringify(body.examples ?? []),
  bannedWords: JSON.stringify(body.banned_words ?? []),
  createdBy: userId,
  createdAt: now,
});

/** Creates a persona in a project with its first version. */
export async function createPersona(c: Context<AppEnv>, body: PersonaContent & { project_id: string; name: string }): Promise<{ persona: PersonaRow; version: PersonaVersionRow }> {
  const projectId = await requireProject(c, body.project_id);
  const now = new Date().toISOString();
  const tenantId = c.var.tenant.id;
  const persona: PersonaRow = { id: newId("psn"), tenantId, projectId, name: body.name, latestVersion: 1, createdBy: c.var.principal.userId, createdAt: now, updatedAt: now };
  const version = versionRow(tenantId, persona.id, 1, body, c.var.principal.userId, now) as PersonaVersionRow;
  const db = c.var.db;
  const [inserted] = await db.batch([
    insertWithin(db, personas, persona, and(eq(personas.tenantId, tenantId), eq(personas.projectId, projectId)), MAX_PERSONAS_PER_PROJECT).returning({ id: personas.id }),
    insertWhere(db, personaVersions, version, sql`changes() > 0`),
    auditChange(c, { action: "persona.created", resourceType: "persona", resourceId: persona.id, details: { project_id: projectId, name: body.name } }),
  ]);
  if (!inserted[0]) throw new ApiError("PLAN_LIMIT", `A project holds at most ${MAX_PERSONAS_PER_PROJECT} personas`);
  return { persona, version };
}

/**
 * Adds the next version of a persona: the counter and the version in one transaction, so
 * concurrent writers get consecutive numbers. Agents naming the persona use it from their next run.
 */
export async function addVersion(c: Context<AppEnv>, id: string, body: PersonaContent & { name?: string }): Promise<{ persona: PersonaRow; version: PersonaVersionRow }> {
  const current = await findPersona(c, id);
  if (current.latestVersion >= MAX_PERSONA_VERSIONS) throw new ApiError("PLAN_LIMIT", `A persona keeps at most ${MAX_PERSONA_VERSIONS} versions`);
  const now = new Date().toISOString();
  const db = c.var.db;
  const [updated, inserted] = await db.batch([
    db
      .update(personas)
      .set({ latestVersion: sql`${personas.latestVersion} + 1`, ...(body.name !== undefined && { name: body.name }), updatedAt: now })
      .where(and(eq(personas.tenantId, c.var.tenant.id), eq(personas.id, id)))
      .returning(),
    insertWhere(db, personaVersions, versionRow(current.tenantId, id, sql`p.latest_version`, body, c.var.principal.userId, now), sql`p.id = ${id} AND p.tenant_id = ${current.tenantId} AND changes() > 0`, sql`${personas} p`).returning(),
    auditChange(c, { action: "persona.version_created", resourceType: "persona", resourceId: id }),
  ]);
  if (!updated[0] || !inserted[0]) throw new ApiError("NOT_FOUND", `No persona ${id}`);
  // Conversations naming it reply in the new version from now (agents take it at their next run).
  await reconfigureNaming(c, id);
  return { persona: updated[0], version: inserted[0] };
}

/** One version of the tenant's persona, or 404 naming it. */
export async function findVersion(c: Context<AppEnv>, id: string, version: number): Promise<PersonaVersionRow> {
  await assertReachable(c, personas, id, "persona");
  const row = await c.var.db
    .select()
    .from(personaVersions)
    .where(and(eq(personaVersions.tenantId, c.var.tenant.id), eq(personaVersions.personaId, id), eq(personaVersions.version, version)))
    .get();
  if (!row) throw new ApiError("NOT_FOUND", `Persona ${id} has no version ${version}`);
  return row;
}

/** Every version of the persona, oldest first. */
export async function listVersions(c: Context<AppEnv>, id: string): Promise<PersonaVersionRow[]> {
  await findPersona(c, id);
  return c.var.db
    .select()
    .from(personaVersions)
    .where(and(eq(personaVersions.tenantId, c.var.tenant.id), eq(personaVersions.personaId, id)))
    .orderBy(asc(personaVersions.version))
    .limit(MAX_PERSONA_VERSIONS);
}

/** Deletes a persona and its versions; agents and conversations naming it stop using one. */
export async function deletePersona(c: Context<AppEnv>, id: string): Promise<void> {
  const db = c.var.db;
  const tenantId = c.var.tenant.id;
  const gone = sql`NOT EXISTS (SELECT 1 FROM ${personas} WHERE ${personas.id} = ${id})`;
  const naming = await db.select({ id: conversations.id }).from(conversations).where(and(eq(conversations.tenantId, tenantId), eq(conversations.personaId, id)));
  const [deleted] = await db.batch([
    db.delete(personas).where(and(eq(personas.tenantId, tenantId), eq(personas.id, id), withinReach(c, personas.projectId))).returning({ id: personas.id }),
    auditChange(c, { action: "persona.deleted", resourceType: "persona", resourceId: id }),
    db.delete(personaVersions).where(and(eq(personaVersions.tenantId, tenantId), eq(personaVersions.personaId, id), gone)),
    db.update(agents).set({ personaId: null }).where(and(eq(agents.tenantId, tenantId), eq(agents.personaId, id), gone)),
    db.update(conversations).set({ personaId: null }).where(and(eq(conversations.tenantId, tenantId), eq(conversations.personaId, id), gone)),
  ]);
  if (!deleted[0]) throw new ApiError("NOT_FOUND", `No persona ${id}`);
  // Their rooms stop using it now.
  await reconfigureConversations(c, naming.map((n) => n.id));
}

/** The answer to a `persona_id` that names no persona of the project. */
export const noPersonaIn = (personaId: string, projectId: string) =>
  new ApiError("NOT_FOUND", `No persona ${personaId} in project ${projectId}`, { errors: [{ in: "body", field: "persona_id", message: "no such persona in the agent's project" }] });

/** A persona an agent names must be in the agent's project: 404 naming `persona_id` otherwise. */
export async function requirePersona(c: Context<AppEnv>, personaId: string, projectId: string): Promise<string> {
  const row = await c.var.db.select({ projectId: personas.projectId }).from(personas).where(and(eq(personas.tenantId, c.var.tenant.id), eq(personas.id, personaId))).get();
  if (!row || row.projectId !== projectId) throw noPersonaIn(personaId, projectId);
  return personaId;
}

const bullets = (json: string) => (JSON.parse(json) as string[]).map((line) => `- ${line}`).join("\n");

/**
 * The persona's part of a system prompt, which comes first (then the agent's, then the
 * conversation's): who writes, for whom, the rules, the words never to use, and examples.
 */
export function personaPrompt(name: string, v: PersonaVersionRow): string {
  const parts = [`You write as the brand persona "${name}".`, `Voice: ${v.voice}`];
  if (v.audience) parts.push(`Audience: ${v.audience}`);
  if (JSON.parse(v.dos).length) parts.push(`Do:\n${bullets(v.dos)}`);
  if (JSON.parse(v.donts).length) parts.push(`Don't:\n${bullets(v.donts)}`);
  const banned = JSON.parse(v.bannedWords) as string[];
  if (banned.length) parts.push(`Never use these words: ${banned.join(", ")}.`);
  const examples = JSON.parse(v.examples) as string[];
  if (examples.length) parts.push(`Example posts in this voice:\n${examples.map((e) => `---\n${e}`).join("\n")}\n---`);
  return parts.join("\n\n");
}

/** The persona's latest version with its name, for a run being created; null when it is gone. */
export async function latestPersona(c: Context<AppEnv>, personaId: string): Promise<{ id: string; projectId: string; name: string; version: PersonaVersionRow } | null> {
  const row = await c.var.db
    .select({ projectId: personas.projectId, name: personas.name, version: personaVersions })
    .from(personas)
    .innerJoin(personaVersions, and(eq(personaVersions.personaId, personas.id), eq(personaVersions.version, personas.latestVersion)))
    .where(and(eq(personas.tenantId, c.var.tenant.id), eq(personas.id, personaId)))
    .get();
  return row ? { id: personaId, projectId: row.projectId, name: row.name, version: row.version } : null;
}
