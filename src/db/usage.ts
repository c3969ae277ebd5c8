import { sql } from "drizzle-orm";
import { newId } from "../lib/ids";
import { costMicros } from "../limits/prices";
import type { TenantDb } from "./router";
import { usageDaily, usageEvents } from "./tenant/schema";

/** One model call to record. */
export interface ModelCall {
  tenantId: string;
  userId: string;
  apiKeyId: string | null;
  projectId: string;
  source: "chat" | "run" | "embedding";
  sourceId: string | null;
  model: string;
  provider: string;
  tokensIn: number;
  tokensOut: number;
  at?: Date;
}

/** Records a model call and folds it into its daily rollup, in one batch. Returns its cost. */
export async function recordUsage(db: TenantDb, call: ModelCall): Promise<number> {
  const at = call.at ?? new Date();
  const day = at.toISOString().slice(0, 10);
  const cost = costMicros(call.provider, call.model, call.tokensIn, call.tokensOut);
  await db.batch([
    db.insert(usageEvents).values({
      id: newId("use"),
      tenantId: call.tenantId,
      day,
      userId: call.userId,
      apiKeyId: call.apiKeyId,
      projectId: call.projectId,
      source: call.source,
      sourceId: call.sourceId,
      model: call.model,
      provider: call.provider,
      tokensIn: call.tokensIn,
      tokensOut: call.tokensOut,
      costMicros: cost,
      createdAt: at.toISOString(),
    }),
    db
      .insert(usageDaily)
      .values({ tenantId: call.tenantId, day, model: call.model, projectId: call.projectId, userId: call.userId, calls: 1, tokensIn: call.tokensIn, tokensOut: call.tokensOut, costMicros: cost })
      .onConflictDoUpdate({
        target: [usageDaily.tenantId, usageDaily.day, usageDaily.model, usageDaily.projectId, usageDaily.userId],
        set: {
          calls: sql`${usageDaily.calls} + 1`,
          tokensIn: sql`${usageDaily.tokensIn} + ${call.tokensIn}`,
          tokensOut: sql`${usageDaily.tokensOut} + ${call.tokensOut}`,
          costMicros: sql`${usageDaily.costMicros} + ${cost}`,
        },
      }),
  ]);
  return cost;
}
