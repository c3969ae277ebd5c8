import { and, eq, inArray, lt } from "drizzle-orm";
import { releaseStaleHolds } from "../billing/metering";
import { tenantDatabases, tenants } from "../db/control/schema";
import { controlDb, type Jurisdiction, tenantDb } from "../db/router";
import { runs } from "../db/tenant/schema";
import type { Env } from "../env";
import { requeueStuckDocuments } from "../knowledge/ingest";
import { sweepWebhooks } from "../webhooks/dispatch";
import { queueDuePosts } from "../content/publishing";
import { collectMetrics } from "../content/analytics";
import { remindReviewers } from "../content/reviews";
import { createLogger, errorFields } from "../lib/log";
import { ownShard } from "../shards/shards";
import { expireExports } from "../compliance/exports";
import { sweepRetention } from "../compliance/settings";
import type { RunMessage } from "./consumer";

/**
 * A run PENDING this long has no message on its way: its queue send failed and no client retried
 * it (every other path to PENDING comes with a delivery due within minutes).
 */
export const STUCK_AFTER_MS = 10 * 60 * 1000;
const PER_TENANT = 100;
const TENANTS_AT_ONCE = 10;

/** Tenants a sweep message carries: about 15 binding calls each, so a group stays far inside an invocation's 10,000 subrequests. */
export const SWEEP_GROUP = 25;

/** A group of tenants to sweep, as of the cron's time (`at`, ms). */
export interface SweepMessage {
  v: 1;
  tenant_ids: string[];
  at: number;
}

const activeHere = (env: Env) => and(eq(tenants.status, "active"), eq(tenantDatabases.shard, ownShard(env)));

/**
 * The cron's plan: this shard's active tenants (each shard's Worker sweeps the databases it binds),
 * in groups of SWEEP_GROUP. One read, however many tenants: the sweeping itself is the queue's.
 */
export async function planSweep(env: Env, now = Date.now()): Promise<SweepMessage[]> {
  const rows = await controlDb(env).select({ id: tenants.id }).from(tenants).innerJoin(tenantDatabases, eq(tenantDatabases.binding, tenants.dbBinding)).where(activeHere(env)).orderBy(tenants.id);
  const groups: SweepMessage[] = [];
  for (let i = 0; i < rows.length; i += SWEEP_GROUP) groups.push({ v: 1, tenant_ids: rows.slice(i, i + SWEEP_GROUP).map((r) => r.id), at: now });
  return groups;
}

/** The cron trigger: the plan, queued (100 messages a send). */
export async function queueSweep(env: Env, now = Date.now()): Promise<number> {
  const groups = await planSweep(env, now);
  for (let i = 0; i < groups.length; i += 100) await env.SWEEP_QUEUE.sendBatch(groups.slice(i, i + 100).map((body) => ({ body, contentType: "json" as const })));
  return groups.length;
}

/** The sweep queue's consumer: each message's tenants, still active here, swept as of the cron's time. */
export async function consumeSweep(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  for (const message of batch.messages) {
    const body = message.body as Partial<SweepMessage>;
    if (body?.v !== 1 || !Array.isArray(body.tenant_ids) || typeof body.at !== "number") {
      createLogger({ queue: batch.queue }).error("sweep.malformed", { message_id: message.id });
      message.ack();
      continue;
    }
    const group = await controlDb(env)
      .select({ id: tenants.id, dbBinding: tenants.dbBinding, jurisdiction: tenants.jurisdiction })
      .from(tenants)
      .innerJoin(tenantDatabases, eq(tenantDatabases.binding, tenants.dbBinding))
      .where(and(activeHere(env), inArray(tenants.id, body.tenant_ids.slice(0, SWEEP_GROUP))));
    await sweepTenants(env, group, body.at);
    message.ack();
  }
}

/** A group whose sweep kept failing: logged (the next cron sweeps its tenants again). */
export async function consumeDeadSweep(batch: MessageBatch<unknown>): Promise<void> {
  for (const message of batch.messages) {
    createLogger({ queue: batch.queue }).error("sweep.dead", { message_id: message.id, tenants: (message.body as Partial<SweepMessage>)?.tenant_ids?.length ?? 0 });
    message.ack();
  }
}

/**
 * The sweep of some tenants. Queues again every run left PENDING without a message (a run that did
 * have one is protected by its claim, so sending twice is safe), and every document version left
 * processing the same way; gives back reservations left by calls whose holder is gone; queues posts
 * whose minute was missed, collects published posts' counts, reminds reviewers; deletes what the
 * tenant's retention policy no longer keeps, and expired exports; and dispatches webhooks no write
 * dispatched. One tenant's trouble does not stop the others'.
 */
export async function sweepTenants(env: Env, active: { id: string; dbBinding: string; jurisdiction: Jurisdiction }[], now = Date.now()): Promise<void> {
  const log = createLogger({ component: "sweeper" });
  const cutoff = new Date(now - STUCK_AFTER_MS).toISOString();
  for (let i = 0; i < active.length; i += TENANTS_AT_ONCE) {
    await Promise.all(
      active.slice(i, i + TENANTS_AT_ONCE).map(async (tenant) => {
        try {
          const db = tenantDb(env, tenant);
          // Reservations whose call died with its holder (a room or consumer gone for good): given back unbilled.
          const released = await releaseStaleHolds(db, tenant.id, now);
          if (released) log.warn("quota.holds_released", { tenant_id: tenant.id, holds: released });
          // Content: posts whose minute passed with no alarm (or whose publishing lost its message),
          // published posts' hourly counts, reviewers due a reminder. Each step's trouble is its own.
          const step = (name: string, run: () => Promise<number>, level: "warn" | "info") =>
            run()
              .then((n) => n && log[level](name, { tenant_id: tenant.id, count: n }))
              .catch((err) => log.error(`${name}_failed`, { ...errorFields(err), tenant_id: tenant.id }));
          await step("publishing.swept", async () => (await queueDuePosts(env, tenant, now)).queued, "warn");
          await step("analytics.collected", () => collectMetrics(env, tenant, now), "info");
          await step("reviews.reminded", () => remindReviewers(env, tenant, now), "info");
          // Compliance: what the tenant's retention policy no longer keeps, and exports past their 7 days.
          await step("retention.swept", () => sweepRetention(env, tenant, now), "info");
          await step("exports.expired", () => expireExports(env, tenant, now), "info");
          const webhooks = await sweepWebhooks(env, tenant, now);
          if (webhooks.requeued) log.warn("webhooks.requeued", { tenant_id: tenant.id, messages: webhooks.requeued });
          const documents = await requeueStuckDocuments(env, db, tenant.id, cutoff, now);
          if (documents) log.warn("documents.requeued", { tenant_id: tenant.id, documents });
          const stuck = await db
            .select({ id: runs.id })
            .from(runs)
            .where(and(eq(runs.tenantId, tenant.id), eq(runs.status, "PENDING"), lt(runs.updatedAt, cutoff)))
            .limit(PER_TENANT);
          if (!stuck.length) return;
          await env.RUNS_QUEUE.sendBatch(stuck.map((r) => ({ body: { v: 1, tenant_id: tenant.id, run_id: r.id } satisfies RunMessage, contentType: "json" as const })));
          log.warn("runs.requeued", { tenant_id: tenant.id, runs: stuck.length });
        } catch (err) {
          // One tenant's trouble must not stop the sweep of the others.
          log.error("runs.requeue_failed", { ...errorFields(err), tenant_id: tenant.id });
        }
      }),
    );
  }
}
