import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * The FTS5 full-text index over knowledge chunks (migration 0009: external content on
 * `knowledge_chunks.pk`, porter stemming). Declared here, outside the tenant schema drizzle-kit
 * generates migrations from, only so its inserts can go in a batch; `knowledge_chunks_fts` is the
 * hidden column FTS5 takes commands through (`'delete'`).
 */
export const knowledgeChunksFts = sqliteTable("knowledge_chunks_fts", {
  rowid: integer(),
  text: text(),
  command: text("knowledge_chunks_fts"),
});
