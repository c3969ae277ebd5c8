import { createdAt } from "../columns";
import { index, sqliteTable, text } from "drizzle-orm/sqlite-core";

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
