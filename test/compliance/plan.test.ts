import { env } from "cloudflare:test";
import { is } from "drizzle-orm";
import { getTableConfig, SQLiteTable } from "drizzle-orm/sqlite-core";
import { describe, expect, it } from "vitest";
import { CONTROL_TABLES, NOT_STORES, OTHER_STORES, PERSONAL_COLUMN, type TablePlan, TENANT_TABLES, treatedColumns } from "../../src/compliance/plan";
import * as control from "../../src/db/control/schema";
import * as tenant from "../../src/db/tenant/schema";
import { TENANT_DB_BINDING } from "../../src/db/router";

/** Every table a schema module defines, by its SQL name, with its columns' SQL names. */
const tablesOf = (schema: Record<string, unknown>) =>
  new Map(
    Object.values(schema)
      .filter((v): v is SQLiteTable => is(v, SQLiteTable))
      .map((t) => {
        const config = getTableConfig(t);
        // The schema's keys are camelCase; the database's columns are their snake_case (the drizzle casing option).
        return [config.name, config.columns.map((c) => c.name.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`))] as const;
      }),
  );

const named = (plan: TablePlan) => treatedColumns(plan.person);

function holdsTo(schema: Record<string, unknown>, plans: Record<string, TablePlan>) {
  const tables = tablesOf(schema);
  // Every table is classified, and the plan names no table that does not exist.
  expect([...tables.keys()].sort()).toEqual(Object.keys(plans).sort());
  const problems: string[] = [];
  for (const [name, columns] of tables) {
    const plan = plans[name]!;
    for (const column of named(plan)) if (!columns.includes(column)) problems.push(`${name}.${column} is in the plan but not the table`);
    for (const column of columns.filter((c) => PERSONAL_COLUMN.test(c))) {
      if (!named(plan).includes(column)) problems.push(`${name}.${column} can hold a person's id and the plan does not treat it`);
    }
  }
  expect(problems).toEqual([]);
}

/** What kind of store a binding is, by what it can do; null for what stores nothing (the AI binding, plain vars). */
function storeKind(binding: unknown): string | null {
  const has = (m: string) => typeof (binding as Record<string, unknown>)?.[m] === "function";
  if (has("idFromName")) return "durable_object";
  if (has("createMultipartUpload")) return "r2";
  if (has("getWithMetadata")) return "kv";
  if (has("sendBatch")) return "queue";
  if (has("prepare") && has("batch")) return "d1";
  if (has("upsert") && has("query")) return "vectors";
  return null;
}

/** Bindings the test pool adds (its own services, the webhook receiver tests deliver to): not the Worker's. */
const TEST_ONLY = new Set(["RECEIVER", "__VITEST_POOL_WORKERS_SELF_SERVICE", "__VITEST_POOL_WORKERS_LOOPBACK_SERVICE"]);

describe("the erasure plan", () => {
  it("classifies every table of the control schema and every column that can hold a person", () => holdsTo(control, CONTROL_TABLES));

  it("classifies every table of the tenant schema and every column that can hold a person", () => holdsTo(tenant, TENANT_TABLES));

  it("classifies every store the Worker is bound to (the tenant databases are the tenant tables)", () => {
    const stores = Object.entries(env as unknown as Record<string, unknown>)
      .map(([name, binding]) => [name, storeKind(binding)] as const)
      .filter(([name, kind]) => kind !== null && !TENANT_DB_BINDING.test(name) && !TEST_ONLY.has(name) && !NOT_STORES[name]);
    expect(stores.length).toBeGreaterThan(8);
    // What is declared to hold nothing is a binding the Worker has.
    for (const name of Object.keys(NOT_STORES)) expect(Object.keys(env), name).toContain(name);
    const unclassified = stores.filter(([name]) => !OTHER_STORES[name]).map(([name, kind]) => `${name} (${kind})`);
    expect(unclassified).toEqual([]);
    for (const [name, kind] of stores) expect(OTHER_STORES[name]!.kind, name).toBe(kind);
  });
});
