import { sql } from "drizzle-orm";
import { text } from "drizzle-orm/sqlite-core";

/** A creation time: ISO 8601 with milliseconds, set by SQLite when the row is written. */
export const createdAt = () => text().notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))`);

/**
 * An outbox event's columns, the same in the tenant's outbox and the control database's (whose
 * events are relayed into the tenant's under the same id): fresh builders for each table.
 */
export const eventColumns = () => ({
  id: text().primaryKey(),
  tenantId: text().notNull(),
  type: text().notNull(),
  subjectType: text().notNull(),
  subjectId: text().notNull(),
  /** JSON: the event's payload. */
  data: text().notNull(),
  createdAt: createdAt(),
});
