import { z } from "zod";
import type { Env } from "../env";
import { createLogger, errorFields } from "../lib/log";
import { failErasure, workOnErasure } from "./erasure";
import { failExport, writeExport } from "./exports";

/** The compliance queue's messages: an export to write, or an erasure to work on (ids only). */
const Message = z.discriminatedUnion("kind", [
  z.object({ v: z.literal(1), kind: z.literal("export"), tenant_id: z.string(), export_id: z.string() }),
  z.object({ v: z.literal(1), kind: z.literal("erasure"), erasure_id: z.string() }),
]);

const log = createLogger({ component: "compliance" });

/**
 * Works each message: an export is written whole; an erasure works a slice and queues the next
 * itself. A failure is retried with backoff (the job resumes from its progress); a message that is
 * not one of ours is dropped.
 */
export async function consumeCompliance(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  for (const message of batch.messages) {
    const body = Message.safeParse(message.body);
    if (!body.success) {
      log.warn("compliance.bad_message", { id: message.id });
      message.ack();
      continue;
    }
    try {
      if (body.data.kind === "export") await writeExport(env, body.data);
      else await workOnErasure(env, body.data.erasure_id);
      message.ack();
    } catch (err) {
      log.error("compliance.failed", { ...errorFields(err), ...body.data, attempts: message.attempts });
      message.retry({ delaySeconds: Math.min(600, 10 * 2 ** message.attempts) });
    }
  }
}

/** A message whose retries ran out: its job is marked failed with the reason. */
export async function consumeDeadCompliance(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  for (const message of batch.messages) {
    const body = Message.safeParse(message.body);
    if (body.success) {
      const why = "the job kept failing; see the platform's logs";
      if (body.data.kind === "export") await failExport(env, body.data, why);
      else await failErasure(env, body.data.erasure_id, why);
    }
    message.ack();
  }
}
