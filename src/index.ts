import { createApp } from "./app";
import type { Env } from "./env";
import { createLogger } from "./lib/log";

export { ConversationRoom } from "../durable-objects/conversation-room";
export { RateLimiter } from "../durable-objects/rate-limiter";

const app = createApp();

export default {
  fetch: app.fetch,
  async queue(batch: MessageBatch<unknown>, _env: Env): Promise<void> {
    // No queue has a consumer yet (runs: issue 5, webhooks: a later one). Retrying keeps every
    // message: after max_retries it moves to its dead-letter queue, where it waits.
    createLogger({ queue: batch.queue }).warn("queue.no_consumer", { messages: batch.messages.length });
    batch.retryAll({ delaySeconds: 60 });
  },
} satisfies ExportedHandler<Env>;
