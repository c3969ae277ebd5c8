import { eq, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import { coalescing } from "../../src/db/coalesce";
import * as tenantSchema from "../../src/db/tenant/schema";
import { createTenant, tenantD1 } from "../harness";

/** The tenant's real D1, counting the round trips (batches) made through it. */
async function countedDb() {
  const t = await createTenant();
  const d1 = await tenantD1(t);
  const counter = { batches: 0 };
  const counted = new Proxy(d1, {
    get(target, prop) {
      if (prop === "batch") {
        return (statements: D1PreparedStatement[]) => {
          counter.batches++;
          return target.batch(statements);
        };
      }
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { t, db: coalescing(drizzle(counted, { schema: tenantSchema, casing: "snake_case" })), counter };
}

describe("coalescing a batch's database work", () => {
  it("answers concurrent batches from one round trip, each with its own results", async () => {
    const { t, db, counter } = await countedDb();
    const { tokenQuota } = tenantSchema;
    const months = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05"];
    const results = await Promise.all(
      months.map((month, i) =>
        db.batch([
          db.insert(tokenQuota).values({ tenantId: t.id, month, used: i }),
          db.select({ used: tokenQuota.used }).from(tokenQuota).where(eq(tokenQuota.month, month)),
        ]),
      ),
    );
    expect(counter.batches).toBe(1);
    expect(results.map(([, read]) => read)).toEqual(months.map((_, i) => [{ used: i }]));
  });

  it("fails every caller of a round trip whose statements fail, and writes nothing of any", async () => {
    const { t, db, counter } = await countedDb();
    const { tokenQuota } = tenantSchema;
    const good = db.batch([db.insert(tokenQuota).values({ tenantId: t.id, month: "2026-06" })]);
    const bad = db.batch([db.run(sql`INSERT INTO no_such_table VALUES (1)`)]);
    await expect(good).rejects.toThrow(/no_such_table/);
    await expect(bad).rejects.toThrow(/no_such_table/);
    expect(counter.batches).toBe(1);
    expect(await db.select().from(tokenQuota).where(eq(tokenQuota.tenantId, t.id))).toEqual([]);
    // The next turn's batches make a new round trip.
    await db.batch([db.insert(tokenQuota).values({ tenantId: t.id, month: "2026-07" })]);
    expect(counter.batches).toBe(2);
  });
});
