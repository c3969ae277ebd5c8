import { and, asc, eq, inArray, isNull, lt, or, sql } from "drizzle-orm";
import { tenantById } from "../db/directory";
import { type TenantDb, tenantDb } from "../db/router";
import { outbox, webhookEndpoints, webhookMessages } from "../db/tenant/schema";
import type { Env } from "../env";
import { newId } from "../lib/ids";
import { createLogger, errorFields } from "../lib/log";
import { TtlCache } from "../lib/ttl-cache";

/** The body of a `tessera-webhooks` queue message: one webhook message to attempt. */
export interface DeliveryMessage {
  v: 1;
  tenant_id: string;
  message_id: string;
}

/** The largest payload delivered; a larger event is recorded as a failed message saying so. */
export const MAX_PAYLOAD_BYTES = 256 * 1024;
/** Outbox events turned into messages per pass. */
const EVENTS_PER_PASS = 50;

type Subscriber = { id: string; eventTypes: string | null; filter: string | null; createdAt: string };

/** Each tenant's enabled endpoints, for a few seconds: most writes happen where nobody subscribes. */
const subscribers = new TtlCache<Subscriber[]>(2000);
const SUBSCRIBERS_MS = 5000;

/** Drops this isolate's copy of a tenant's endpoints (they changed). */
export function forgetEndpoints(tenantId: string): void {
  subscribers.delete(tenantId);
}

async function subscribersOf(db: TenantDb, tenantId: string): Promise<Subscriber[]> {
  let list = subscribers.get(tenantId);
  if (!list) {
    list = await db
      .select({ id: webhookEndpoints.id, eventTypes: webhookEndpoints.eventTypes, filter: webhookEndpoints.filter, createdAt: webhookEndpoints.createdAt })
      .from(webhookEndpoints)
      .where(and(eq(webhookEndpoints.tenantId, tenantId), eq(webhookEndpoints.disabled, false)));
    subscribers.set(tenantId, list, SUBSCRIBERS_MS);
  }
  return list;
}

/** The value at a dotted path of the event's data. */
function at(data: unknown, path: string): unknown {
  return path.split(".").reduce<unknown>((v, key) => (v !== null && typeof v === "object" ? (v as Record<string, unknown>)[key] : undefined), data);
}

/** Whether an endpoint wants an event: its type subscribed (or all), every filter field equal. An endpoint gets only events made after it. */
export function wants(e: Subscriber, event: { type: string; data: unknown; createdAt: string }): boolean {
  if (event.createdAt < e.createdAt) return false;
  if (e.eventTypes && !(JSON.parse(e.eventTypes) as string[]).includes(event.type)) return false;
  if (!e.filter) return true;
  return Object.entries(JSON.parse(e.filter) as Record<string, unknown>).every(([path, value]) => at(event.data, path) === value);
}

/**
 * Turns the tenant's unpublished outbox events into one webhook message per subscribed endpoint
 * and queues them. The messages and the events' `published_at` are written in one transaction, and
 * a message is unique per (endpoint, event), so concurrent passes dispatch an event once. Runs right
 * after a write (the request's or the consumer's `waitUntil`) and from the cron sweep. Answers how
 * many messages it queued.
 */
export async function dispatch(env: Env, tenant: { id: string; dbBinding: string }): Promise<number> {
  const db = tenantDb(env, tenant);
  const endpoints = await subscribersOf(db, tenant.id);
  if (!endpoints.length) return 0;
  const now = new Date().toISOString();
  // Events older than every endpoint are wanted by none (an endpoint gets only events made after it):
  // marked at once, so a tenant's first endpoint does not wait behind its whole history, 50 a pass.
  const oldest = endpoints.map((e) => e.createdAt).sort()[0]!;
  const [, events] = await db.batch([
    db.update(outbox).set({ publishedAt: now }).where(and(eq(outbox.tenantId, tenant.id), isNull(outbox.publishedAt), lt(outbox.createdAt, oldest))),
    db
      .select()
      .from(outbox)
      .where(and(eq(outbox.tenantId, tenant.id), isNull(outbox.publishedAt)))
      .orderBy(asc(outbox.id))
      .limit(EVENTS_PER_PASS),
  ]);
  if (!events.length) return 0;
  const rows: (typeof webhookMessages.$inferInsert)[] = [];
  for (const event of events) {
    const data = JSON.parse(event.data) as unknown;
    const payload = JSON.stringify({ type: event.type, timestamp: event.createdAt, data });
    const tooLarge = new TextEncoder().encode(payload).byteLength > MAX_PAYLOAD_BYTES;
    for (const endpoint of endpoints) {
      if (!wants(endpoint, { type: event.type, data, createdAt: event.createdAt })) continue;
      rows.push({
        id: newId("whm"),
        tenantId: tenant.id,
        endpointId: endpoint.id,
        eventId: event.id,
        eventType: event.type,
        payload: tooLarge ? JSON.stringify({ type: event.type, timestamp: event.createdAt, data: null }) : payload,
        status: tooLarge ? "failed" : "pending",
        lastError: tooLarge ? `payload_too_large: the event's payload is over ${MAX_PAYLOAD_BYTES} bytes and is not sent` : null,
        createdAt: now,
        updatedAt: now,
      });
    }
  }
  const inserts = rows.map((r) => db.insert(webhookMessages).values(r).onConflictDoNothing().returning({ id: webhookMessages.id, status: webhookMessages.status }));
  const publish = db
    .update(outbox)
    .set({ publishedAt: now })
    .where(and(eq(outbox.tenantId, tenant.id), inArray(outbox.id, events.map((e) => e.id)), isNull(outbox.publishedAt)));
  const results = await db.batch([publish, ...inserts]);
  const queued = results.slice(1).flatMap((r) => r as { id: string; status: string }[]).filter((m) => m.status === "pending");
  await send(env, tenant.id, queued.map((m) => m.id));
  return queued.length;
}

/** Queues delivery attempts; a send that fails leaves the messages pending for the sweep. */
export async function send(env: Env, tenantId: string, messageIds: string[], delaySeconds = 0): Promise<void> {
  for (let i = 0; i < messageIds.length; i += 100) {
    await env.WEBHOOKS_QUEUE.sendBatch(
      messageIds.slice(i, i + 100).map((id) => ({ body: { v: 1, tenant_id: tenantId, message_id: id } satisfies DeliveryMessage, contentType: "json" as const, delaySeconds })),
    );
  }
}

/** A pending message whose attempt is this overdue has no queue message on its way (its send failed). */
export const OVERDUE_MS = 2 * 60 * 1000;

/** The cron sweep's part: dispatch what is unpublished, and queue again pending messages long overdue. */
export async function sweepWebhooks(env: Env, tenant: { id: string; dbBinding: string }, now = Date.now()): Promise<{ dispatched: number; requeued: number }> {
  const log = createLogger({ component: "webhooks" });
  let dispatched = 0;
  try {
    dispatched = await dispatch(env, tenant);
  } catch (err) {
    log.error("webhooks.dispatch_failed", { ...errorFields(err), tenant_id: tenant.id });
  }
  const db = tenantDb(env, tenant);
  const overdue = await db
    .select({ id: webhookMessages.id })
    .from(webhookMessages)
    .where(
      and(
        eq(webhookMessages.tenantId, tenant.id),
        or(eq(webhookMessages.status, "pending"), and(eq(webhookMessages.status, "delivering"), lt(webhookMessages.leaseUntil, now))),
        sql`coalesce(${webhookMessages.nextAttemptAt}, 0) < ${now - OVERDUE_MS}`,
        lt(webhookMessages.updatedAt, new Date(now - OVERDUE_MS).toISOString()),
      ),
    )
    .limit(100);
  await send(env, tenant.id, overdue.map((m) => m.id));
  return { dispatched, requeued: overdue.length };
}

/** Dispatches the events a queue batch's messages may have written, for each tenant they name. */
export async function dispatchFor(env: Env, batch: MessageBatch<unknown>): Promise<void> {
  const ids = new Set(batch.messages.map((m) => (m.body as { tenant_id?: unknown } | null)?.tenant_id).filter((id): id is string => typeof id === "string"));
  for (const id of ids) {
    try {
      const tenant = await tenantById(env, id);
      if (tenant) await dispatch(env, tenant);
    } catch (err) {
      createLogger({ component: "webhooks" }).error("webhooks.dispatch_failed", { ...errorFields(err), tenant_id: id });
    }
  }
}
