import { eq } from "drizzle-orm";
import type { Env } from "../env";
import { TtlCache } from "../lib/ttl-cache";
import { plans } from "./control/schema";
import { controlDb } from "./router";

export type Plan = typeof plans.$inferSelect;

// Plans change with a migration or an operator's hand, rarely; a minute of staleness per isolate is fine.
const cache = new TtlCache<Plan>(16);

/** A plan by id (cached per isolate for a minute). */
export async function planOf(env: Env, planId: string): Promise<Plan> {
  const hit = cache.get(planId);
  if (hit) return hit;
  const plan = await controlDb(env).select().from(plans).where(eq(plans.id, planId)).get();
  if (!plan) throw new Error(`Unknown plan ${planId}`);
  cache.set(planId, plan, 60_000);
  return plan;
}
