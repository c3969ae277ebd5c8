import { createdAt } from "../columns";
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * Tables of a tenant's own database. Each still carries `tenant_id` and every query
 * filters on it: a second wall behind the database router.
 */
export const projects = sqliteTable(
  "projects",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    name: text().notNull(),
    description: text(),
    createdBy: text().notNull(),
    createdAt: createdAt(),
    updatedAt: createdAt(),
  },
  (t) => [index("projects_tenant_idx").on(t.tenantId, t.id)],
);

/** Every write in the tenant, with who did it, to what, and the request it came in. */
export const auditLog = sqliteTable(
  "audit_log",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    actorType: text({ enum: ["user", "api_key", "platform"] }).notNull(),
    actorId: text(),
    action: text().notNull(),
    resourceType: text().notNull(),
    resourceId: text(),
    requestId: text().notNull(),
    /** JSON object with what changed (never secrets). */
    details: text(),
    createdAt: createdAt(),
  },
  (t) => [index("audit_log_tenant_idx").on(t.tenantId, t.id), index("audit_log_action_idx").on(t.tenantId, t.action, t.id)],
);

/**
 * A conversation's metadata. Its messages live in its ConversationRoom's own SQLite; the room
 * keeps `message_count` (the last seq) and `last_activity_at` current here.
 */
export const conversations = sqliteTable(
  "conversations",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    projectId: text().notNull(),
    title: text(),
    systemPrompt: text(),
    model: text().notNull(),
    retentionDays: integer(),
    messageCount: integer().notNull().default(0),
    lastActivityAt: text(),
    createdBy: text().notNull(),
    createdAt: createdAt(),
    updatedAt: createdAt(),
  },
  (t) => [index("conversations_tenant_idx").on(t.tenantId, t.id), index("conversations_project_idx").on(t.tenantId, t.projectId, t.id)],
);
