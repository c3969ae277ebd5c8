import { and, eq, inArray, type SQL, sql } from "drizzle-orm";
import type { Context } from "hono";
import { withinReach } from "../auth/reach";
import type { AppEnv } from "../context";
import { auditChange } from "../db/audit";
import { insertWhere } from "../db/insert-where";
import { findReachable, listReachable } from "../db/owned";
import { agents, conversations, knowledgeBases } from "../db/tenant/schema";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { requireProject } from "../projects/store";
import { vectorStore } from "../providers/vectors";
import { deleteBaseRows } from "./store";
import { bucketOf } from "../tenants/residency";

export type KnowledgeBaseRow = typeof knowledgeBases.$inferSelect;

/** The embedding model a base uses unless it names another, and its dimensions. */
export const DEFAULT_EMBEDDING = { model: "@cf/baai/bge-base-en-v1.5", dimensions: 768 } as const;

/** The most knowledge bases one project holds. */
export const MAX_BASES_PER_PROJECT = 50;

/** How documents are cut into chunks: at most `max_tokens` each, consecutive chunks sharing `overlap_tokens`. */
export const CHUNKING = { maxTokens: { min: 100, max: 4096, default: 800 }, overlapDefault: 400 } as const;

export interface Chunking {
  max_tokens?: number;
  overlap_tokens?: number;
}

/** A chunking the API accepts: an overlap of at most half a chunk (else a chunk could repeat most of the one before). */
function chunkingOf(given: Chunking | undefined, current?: { maxTokens: number; overlapTokens: number }) {
  const maxTokens = given?.max_tokens ?? current?.maxTokens ?? CHUNKING.maxTokens.default;
  const overlapTokens = given?.overlap_tokens ?? (given?.max_tokens !== undefined ? Math.min(CHUNKING.overlapDefault, Math.floor(maxTokens / 2)) : (current?.overlapTokens ?? CHUNKING.overlapDefault));
  if (overlapTokens > maxTokens / 2) {
    throw new ApiError("VALIDATION_FAILED", `overlap_tokens (${overlapTokens}) may be at most half of max_tokens (${maxTokens})`, {
      errors: [{ in: "body", field: "chunking.overlap_tokens", message: `at most ${Math.floor(maxTokens / 2)}` }],
    });
  }
  return { maxTokens, overlapTokens };
}

const isBase = (c: Context<AppEnv>, id: string) => and(eq(knowledgeBases.id, id), eq(knowledgeBases.tenantId, c.var.tenant.id), withinReach(c, knowledgeBases.projectId));

/**
 * The knowledge bases a conversation or agent names, as stored (a JSON array): each must be the
 * tenant's (404) and in `projectId` (400), both naming `knowledge_base_ids`.
 */
export async function requireBases(c: Context<AppEnv>, ids: string[], projectId: string): Promise<string> {
  const unique = [...new Set(ids)];
  if (!unique.length) return "[]";
  const rows = await c.var.db
    .select({ id: knowledgeBases.id, projectId: knowledgeBases.projectId })
    .from(knowledgeBases)
    .where(and(eq(knowledgeBases.tenantId, c.var.tenant.id), inArray(knowledgeBases.id, unique)));
  const missing = unique.filter((id) => !rows.some((r) => r.id === id));
  if (missing.length) throw new ApiError("NOT_FOUND", `No knowledge base ${missing.join(", ")}`, { errors: [{ in: "body", field: "knowledge_base_ids", message: `no knowledge base ${missing.join(", ")}` }] });
  const foreign = rows.filter((r) => r.projectId !== projectId).map((r) => r.id);
  if (foreign.length) {
    throw new ApiError("VALIDATION_FAILED", `Knowledge base ${foreign.join(", ")} is in another project`, { errors: [{ in: "body", field: "knowledge_base_ids", message: "bases of the same project only" }] });
  }
  return JSON.stringify(unique);
}

export const findKnowledgeBase = (c: Context<AppEnv>, id: string) => findReachable(c, knowledgeBases, id, "knowledge base");

export const listKnowledgeBases = <U>(c: Context<AppEnv>, q: { limit: number; cursor?: string; project_id?: string }, render: (row: KnowledgeBaseRow) => U) =>
  listReachable(c, knowledgeBases, { ...q, prefix: "kb", filters: [q.project_id ? eq(knowledgeBases.projectId, q.project_id) : undefined] }, render);

export async function createKnowledgeBase(c: Context<AppEnv>, body: { project_id: string; name: string; description?: string | null; chunking?: Chunking }): Promise<KnowledgeBaseRow> {
  const projectId = await requireProject(c, body.project_id);
  const chunking = chunkingOf(body.chunking);
  const now = new Date().toISOString();
  const row: KnowledgeBaseRow = {
    id: newId("kb"),
    tenantId: c.var.tenant.id,
    projectId,
    name: body.name,
    description: body.description ?? null,
    embeddingModel: DEFAULT_EMBEDDING.model,
    dimensions: DEFAULT_EMBEDDING.dimensions,
    chunkMaxTokens: chunking.maxTokens,
    chunkOverlapTokens: chunking.overlapTokens,
    createdBy: c.var.principal.userId,
    createdAt: now,
    updatedAt: now,
  };
  const db = c.var.db;
  const inProject = sql`(SELECT count(*) FROM ${knowledgeBases} WHERE ${knowledgeBases.tenantId} = ${row.tenantId} AND ${knowledgeBases.projectId} = ${projectId})`;
  const [inserted] = await db.batch([
    insertWhere(db, knowledgeBases, row, sql`${inProject} < ${MAX_BASES_PER_PROJECT}`),
    auditChange(c, { action: "knowledge_base.created", resourceType: "knowledge_base", resourceId: row.id, details: { project_id: projectId, name: row.name } }),
  ]);
  if (!inserted.meta.changes) throw new ApiError("PLAN_LIMIT", `A project holds at most ${MAX_BASES_PER_PROJECT} knowledge bases`, { errors: [{ in: "body", field: "project_id", message: `already has ${MAX_BASES_PER_PROJECT} knowledge bases` }] });
  return row;
}

/** Renames or re-describes a base, or changes its chunking (for documents ingested from now on). */
export async function updateKnowledgeBase(c: Context<AppEnv>, id: string, body: { name?: string; description?: string | null; chunking?: Chunking }): Promise<KnowledgeBaseRow> {
  const current = await findKnowledgeBase(c, id);
  const chunking = body.chunking ? chunkingOf(body.chunking, { maxTokens: current.chunkMaxTokens, overlapTokens: current.chunkOverlapTokens }) : undefined;
  const db = c.var.db;
  const [rows] = await db.batch([
    db
      .update(knowledgeBases)
      .set({
        ...(body.name !== undefined && { name: body.name }),
        ...(body.description !== undefined && { description: body.description }),
        ...(chunking && { chunkMaxTokens: chunking.maxTokens, chunkOverlapTokens: chunking.overlapTokens }),
        updatedAt: new Date().toISOString(),
      })
      .where(isBase(c, id))
      .returning(),
    auditChange(c, { action: "knowledge_base.updated", resourceType: "knowledge_base", resourceId: id, details: { fields: Object.keys(body) } }),
  ]);
  if (!rows[0]) throw new ApiError("NOT_FOUND", `No knowledge base ${id}`);
  return rows[0];
}

/**
 * Deletes a base with its documents: rows, chunks and full-text rows in one transaction (each
 * document with its `document.deleted`), then their vectors and originals. An ingestion in flight
 * finds its document gone and removes what it wrote.
 */
export async function deleteKnowledgeBase(c: Context<AppEnv>, id: string): Promise<{ documents: number; chunks: number }> {
  const db = c.var.db;
  await findKnowledgeBase(c, id);
  // Agents and conversations that named the base stop naming it.
  const without = (column: SQL) => sql`(SELECT json_group_array(value) FROM json_each(${column}) WHERE value <> ${id})`;
  const naming = (column: SQL) => sql`EXISTS (SELECT 1 FROM json_each(${column}) WHERE value = ${id})`;
  const removed = await deleteBaseRows(db, c.var.tenant.id, id, [
    db.delete(knowledgeBases).where(isBase(c, id)),
    auditChange(c, { action: "knowledge_base.deleted", resourceType: "knowledge_base", resourceId: id }),
    db
      .update(agents)
      .set({ knowledgeBaseIds: without(sql`${agents.knowledgeBaseIds}`) })
      .where(and(eq(agents.tenantId, c.var.tenant.id), naming(sql`${agents.knowledgeBaseIds}`))),
    db
      .update(conversations)
      .set({ knowledgeBaseIds: without(sql`${conversations.knowledgeBaseIds}`) })
      .where(and(eq(conversations.tenantId, c.var.tenant.id), naming(sql`${conversations.knowledgeBaseIds}`))),
  ]);
  const deleted = removed.extra[0] as D1Result;
  if (!deleted.meta.changes) throw new ApiError("NOT_FOUND", `No knowledge base ${id}`);
  if (removed.chunkIds.length) await vectorStore(c.env).deleteByIds(c.var.tenant.id, removed.chunkIds);
  for (let i = 0; i < removed.r2Keys.length; i += 1000) await bucketOf(c.env, c.var.tenant).delete(removed.r2Keys.slice(i, i + 1000));
  return { documents: removed.documents, chunks: removed.chunkIds.length };
}
