import { sql } from "drizzle-orm";
import { text } from "drizzle-orm/sqlite-core";

/** A creation time: ISO 8601 with milliseconds, set by SQLite when the row is written. */
export const createdAt = () => text().notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))`);
