import { createApp } from "./app";
import type { Env } from "./env";
import { consumeCompliance, consumeDeadCompliance } from "./compliance/consumer";
import { consumeDeadIngest, consumeIngest } from "./knowledge/ingest";
import { createLogger, errorFields } from "./lib/log";
import { sweepMemberEvents } from "./members/events";
import { consumeDeadPublish, consumePublish } from "./content/publishing";
import { consumeDeadWebhooks, consumeWebhooks } from "./webhooks/deliver";
import { dispatchFor } from "./webhooks/dispatch";
import { consumeDeadRuns, consumeRuns } from "./runs/consumer";
import { consumeDeadSweep, consumeSweep, queueSweep } from "./runs/sweeper";
import { canonicalQueue } from "./shards/shards";

export { ConversationRoom } from "../durable-objects/conversation-room";
export { RateLimiter } from "../durable-objects/rate-limiter";
export { LocalVectorIndex } from "../durable-objects/vector-index";
export { PublisherSandbox } from "../durable-objects/publisher-sandbox";
export { MigrationRunner } from "../durable-objects/migration-runner";
export { PublishScheduler } from "../durable-objects/publish-scheduler";

const app = createApp();

/** Queue names as wrangler.toml declares them for shard s1; the handler picks the consumer by the batch's queue (another shard's are prefixed with its name). */
export const QUEUES = {
  runs: "tessera-runs",
  runsDead: "tessera-runs-dlq",
  ingest: "tessera-ingest",
  ingestDead: "tessera-ingest-dlq",
  webhooks: "tessera-webhooks",
  webhooksDead: "tessera-webhooks-dlq",
  publish: "tessera-publish",
  publishDead: "tessera-publish-dlq",
  compliance: "tessera-compliance",
  complianceDead: "tessera-compliance-dlq",
  sweep: "tessera-sweep",
  sweepDead: "tessera-sweep-dlq",
} as const;

export default {
  fetch: app.fetch,
  async queue(batch: MessageBatch<unknown>, env: Env): Promise<void> {
    switch (canonicalQueue(env, batch.queue)) {
      case QUEUES.runs:
        await consumeRuns(batch, env);
        // The events the batch wrote go to webhooks now, not at the next sweep.
        return dispatchFor(env, batch);
      case QUEUES.runsDead:
        return consumeDeadRuns(batch, env);
      case QUEUES.ingest:
        await consumeIngest(batch, env);
        return dispatchFor(env, batch);
      case QUEUES.ingestDead:
        return consumeDeadIngest(batch, env);
      case QUEUES.webhooks:
        return consumeWebhooks(batch, env);
      case QUEUES.webhooksDead:
        return consumeDeadWebhooks(batch, env);
      case QUEUES.publish:
        await consumePublish(batch, env);
        return dispatchFor(env, batch);
      case QUEUES.compliance:
        return consumeCompliance(batch, env);
      case QUEUES.complianceDead:
        return consumeDeadCompliance(batch, env);
      case QUEUES.sweep:
        return consumeSweep(batch, env);
      case QUEUES.sweepDead:
        return consumeDeadSweep(batch);
      case QUEUES.publishDead:
        await consumeDeadPublish(batch, env);
        return dispatchFor(env, batch);
      default:
        // A queue this Worker does not know: retrying keeps every message until its dead-letter queue.
        createLogger({ queue: batch.queue }).warn("queue.no_consumer", { messages: batch.messages.length });
        batch.retryAll({ delaySeconds: 60 });
    }
  },
  /** The cron trigger: membership events relayed, then this shard's tenants queued to be swept in groups (src/runs/sweeper.ts). */
  async scheduled(_controller: ScheduledController, env: Env, ctx: ExecutionContext): Promise<void> {
    // Membership events are relayed into tenants' outboxes first, so this minute's sweep dispatches them.
    ctx.waitUntil(sweepMemberEvents(env).catch((err) => createLogger({ component: "members" }).error("members.sweep_failed", errorFields(err))).then(() => queueSweep(env)).catch((err) => createLogger({ component: "sweeper" }).error("sweep.queue_failed", errorFields(err))));
  },
} satisfies ExportedHandler<Env>;
