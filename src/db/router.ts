import { drizzle } from "drizzle-orm/d1";
import type { Env } from "../env";
import * as controlSchema from "./control/schema";
import * as tenantSchema from "./tenant/schema";

/**
 * Tenant database bindings are named `TENANT_DB_` and four or more digits; `TENANT_DB_EU_` and digits
 * for databases created in the EU jurisdiction (`npm run db:provision -- --jurisdiction eu`).
 */
export const TENANT_DB_BINDING = /^TENANT_DB_(?:EU_)?\d{4,}$/;

/** Where a tenant's data may live: Cloudflare's default placement, or the EU jurisdiction. */
export const JURISDICTIONS = ["default", "eu"] as const;
export type Jurisdiction = (typeof JURISDICTIONS)[number];

/** The jurisdiction a tenant database binding was created in, read from its name. */
export const jurisdictionOf = (binding: string): Jurisdiction => (binding.startsWith("TENANT_DB_EU_") ? "eu" : "default");

const openControlDb = (d1: D1Database) => drizzle(d1, { schema: controlSchema, casing: "snake_case" });
export type ControlDb = ReturnType<typeof openControlDb>;
const openedControl = new WeakMap<D1Database, ControlDb>();

/** Drizzle over the control database (made once per isolate: building one walks the whole schema). */
export function controlDb(env: Env): ControlDb {
  let db = openedControl.get(env.CONTROL_DB);
  if (!db) {
    db = openControlDb(env.CONTROL_DB);
    openedControl.set(env.CONTROL_DB, db);
  }
  return db;
}

/** The names of every tenant database binding this Worker has. */
export function boundTenantDatabases(env: Env): string[] {
  return Object.keys(env).filter((k) => TENANT_DB_BINDING.test(k)).sort();
}

/**
 * The database router: a tenant's own D1 and no other. The binding comes from the
 * tenant's control-plane row, never from the request; a row naming a binding this
 * Worker lacks is a deploy error, so it throws rather than fall back anywhere.
 */
export function tenantDatabase(env: Env, tenant: { id: string; dbBinding: string }): D1Database {
  const db = tenantBinding(env, tenant.dbBinding);
  if (!db) throw new Error(`Tenant ${tenant.id} names database binding ${tenant.dbBinding}, which this Worker does not have`);
  return db;
}

/** The tenant database bound under `name`, if `name` is a tenant database binding at all. */
export function tenantBinding(env: Env, name: string): D1Database | undefined {
  return TENANT_DB_BINDING.test(name) ? (env[name as `TENANT_DB_${string}`] as D1Database | undefined) : undefined;
}

const openTenantDb = (d1: D1Database) => drizzle(d1, { schema: tenantSchema, casing: "snake_case" });
export type TenantDb = ReturnType<typeof openTenantDb>;
const opened = new WeakMap<D1Database, TenantDb>();

/** Drizzle over a tenant's own database (made once per isolate and binding). */
export function tenantDb(env: Env, tenant: { id: string; dbBinding: string }): TenantDb {
  const d1 = tenantDatabase(env, tenant);
  let db = opened.get(d1);
  if (!db) {
    db = openTenantDb(d1);
    opened.set(d1, db);
  }
  return db;
}
