import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * The FTS5 full-text index over knowledge chunks (migration 0009: external content on
 * `knowledge_chunks.pk`, porter stemming). Its second column, the chunk's base, lets a query name
 * its bases inside MATCH, so the index returns only their chunks; `rank` is bm25 over the text alone. Declared here, outside the tenant schema drizzle-kit
 * generates migrations from, only so its inserts can go in a batch; `knowledge_chunks_fts` is the
 * hidden column FTS5 takes commands through (`'delete'`).
 */
export const knowledgeChunksFts = sqliteTable("knowledge_chunks_fts", {
  rowid: integer(),
  text: text(),
  knowledgeBaseId: text("knowledge_base_id"),
  command: text("knowledge_chunks_fts"),
});
