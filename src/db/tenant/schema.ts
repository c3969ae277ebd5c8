import { createdAt } from "../columns";
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

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

/** One model call: who made it, for which project, which model and provider, tokens and cost. */
export const usageEvents = sqliteTable(
  "usage_events",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    /** UTC day, YYYY-MM-DD: the rollup key. */
    day: text().notNull(),
    userId: text().notNull(),
    apiKeyId: text(),
    projectId: text().notNull(),
    /** What made the call: a conversation reply, a run, an embedding. */
    source: text().notNull(),
    sourceId: text(),
    model: text().notNull(),
    provider: text().notNull(),
    tokensIn: integer().notNull(),
    tokensOut: integer().notNull(),
    /** Cost in millionths of a US dollar, from the price table at the time of the call. */
    costMicros: integer().notNull(),
    createdAt: createdAt(),
  },
  (t) => [index("usage_events_tenant_day_idx").on(t.tenantId, t.day)],
);

/** Daily rollups of usage_events, written in the same batch as each event. */
export const usageDaily = sqliteTable(
  "usage_daily",
  {
    tenantId: text().notNull(),
    day: text().notNull(),
    model: text().notNull(),
    projectId: text().notNull(),
    userId: text().notNull(),
    calls: integer().notNull(),
    tokensIn: integer().notNull(),
    tokensOut: integer().notNull(),
    costMicros: integer().notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.day, t.model, t.projectId, t.userId] })],
);

/**
 * Tokens used and reserved this month against the plan's monthly quota. A model call reserves an
 * estimate before it runs (refused if the reservation would pass the quota), then settles to the
 * real count or releases the reservation on failure.
 */
export const tokenQuota = sqliteTable(
  "token_quota",
  {
    tenantId: text().notNull(),
    /** YYYY-MM, UTC. */
    month: text().notNull(),
    used: integer().notNull().default(0),
    reserved: integer().notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.month] })],
);
