import { type SQL, sql } from "drizzle-orm";
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

/**
 * The two statements that record a model call (its event, and its fold into the daily rollup),
 * for a caller's batch. With `condition`, both write only if it holds: a run puts them in the
 * transaction that finishes it, so a run finished once is billed once. Returns the call's cost too.
 */
export function usageStatements(db: TenantDb, call: ModelCall, condition: SQL = sql`1`) {
  const at = call.at ?? new Date();
  const day = at.toISOString().slice(0, 10);
  const cost = costMicros(call.provider, call.model, call.tokensIn, call.tokensOut);
  const statements = [
    db
      .insert(usageEvents)
      .select(
        sql`SELECT ${newId("use")}, ${call.tenantId}, ${day}, ${call.userId}, ${call.apiKeyId}, ${call.projectId}, ${call.source}, ${call.sourceId},
              ${call.model}, ${call.provider}, ${call.tokensIn}, ${call.tokensOut}, ${cost}, ${at.toISOString()} WHERE ${condition}`,
      ),
    db
      .insert(usageDaily)
      .select(
        sql`SELECT ${call.tenantId}, ${day}, ${call.model}, ${call.projectId}, ${call.userId}, 1, ${call.tokensIn}, ${call.tokensOut}, ${cost} WHERE ${condition}`,
      )
      .onConflictDoUpdate({
        target: [usageDaily.tenantId, usageDaily.day, usageDaily.model, usageDaily.projectId, usageDaily.userId],
        set: {
          calls: sql`${usageDaily.calls} + 1`,
          tokensIn: sql`${usageDaily.tokensIn} + ${call.tokensIn}`,
          tokensOut: sql`${usageDaily.tokensOut} + ${call.tokensOut}`,
          costMicros: sql`${usageDaily.costMicros} + ${cost}`,
        },
      }),
  ] as const;
  return { cost, statements };
}

/** Records a model call and folds it into its daily rollup, in one batch. Returns its cost. */
export async function recordUsage(db: TenantDb, call: ModelCall): Promise<number> {
  const { cost, statements } = usageStatements(db, call);
  await db.batch(statements);
  return cost;
}
