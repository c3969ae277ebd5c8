import { and, asc, eq, gte, sql } from "drizzle-orm";
import type { Context } from "hono";
import type { AppEnv } from "../context";
import { auditChange } from "../db/audit";
import { findOwned, listOwned } from "../db/owned";
import { type WEBHOOK_MESSAGE_STATUSES, webhookAttempts, webhookMessages } from "../db/tenant/schema";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { decodeCursor, page } from "../lib/pagination";
import { send } from "./dispatch";
import { findEndpoint } from "./endpoints";

export type WebhookMessageRow = typeof webhookMessages.$inferSelect;
export type AttemptRow = typeof webhookAttempts.$inferSelect;
type Status = (typeof WEBHOOK_MESSAGE_STATUSES)[number];

/** Failed messages one recover call sends again, at most. */
export const MAX_RECOVER = 1000;

export const findMessage = (c: Context<AppEnv>, id: string) => findOwned(c.var.db, webhookMessages, c.var.tenant.id, id, "webhook message");

export const listMessages = <U>(c: Context<AppEnv>, q: { limit: number; cursor?: string; endpoint_id?: string; status?: Status; event_type?: string }, render: (row: WebhookMessageRow) => U) =>
  listOwned(
    c.var.db,
    webhookMessages,
    c.var.tenant.id,
    {
      ...q,
      prefix: "whm",
      filters: [
        q.endpoint_id ? eq(webhookMessages.endpointId, q.endpoint_id) : undefined,
        q.status ? eq(webhookMessages.status, q.status) : undefined,
        q.event_type ? eq(webhookMessages.eventType, q.event_type) : undefined,
      ],
    },
    render,
  );

/** A message's attempts, oldest first. */
export async function listAttempts<U>(c: Context<AppEnv>, messageId: string, q: { limit: number; cursor?: string }, render: (row: AttemptRow) => U) {
  await findMessage(c, messageId);
  const rows = await c.var.db
    .select()
    .from(webhookAttempts)
    .where(and(eq(webhookAttempts.tenantId, c.var.tenant.id), eq(webhookAttempts.messageId, messageId), q.cursor ? sql`${webhookAttempts.id} > ${decodeCursor(q.cursor, "wha")}` : undefined))
    .orderBy(asc(webhookAttempts.id))
    .limit(q.limit + 1);
  return page(rows, q.limit, render);
}

/** Sends a message once more (a new attempt, the same `webhook-id`), whatever became of it. */
export async function replayMessage(c: Context<AppEnv>, id: string): Promise<WebhookMessageRow> {
  const message = await findMessage(c, id);
  const endpoint = await findEndpoint(c, message.endpointId);
  if (endpoint.disabled) throw new ApiError("CONFLICT", `Endpoint ${endpoint.id} is disabled (${endpoint.disabledReason}); enable it, then replay`);
  const db = c.var.db;
  const [rows] = await db.batch([
    db
      .update(webhookMessages)
      .set({ status: "pending", nextAttemptAt: null, leaseUntil: null, updatedAt: new Date().toISOString() })
      .where(and(eq(webhookMessages.tenantId, c.var.tenant.id), eq(webhookMessages.id, id), sql`${webhookMessages.status} <> 'delivering'`))
      .returning(),
    auditChange(c, { action: "webhook_message.replayed", resourceType: "webhook_message", resourceId: id }),
  ]);
  if (!rows[0]) throw new ApiError("CONFLICT", `Message ${id} is being attempted right now; replay it once that attempt ends`);
  await send(c.env, c.var.tenant.id, [id]);
  return rows[0];
}

/** Sends again every failed message of the endpoint made since `since` (at most MAX_RECOVER); answers how many. */
export async function recoverEndpoint(c: Context<AppEnv>, endpointId: string, since: string): Promise<number> {
  const endpoint = await findEndpoint(c, endpointId);
  if (endpoint.disabled) throw new ApiError("CONFLICT", `Endpoint ${endpoint.id} is disabled (${endpoint.disabledReason}); enable it, then recover`);
  const db = c.var.db;
  const failed = await db
    .select({ id: webhookMessages.id })
    .from(webhookMessages)
    .where(and(eq(webhookMessages.tenantId, c.var.tenant.id), eq(webhookMessages.endpointId, endpointId), eq(webhookMessages.status, "failed"), gte(webhookMessages.createdAt, since)))
    .limit(MAX_RECOVER);
  if (!failed.length) return 0;
  const ids = failed.map((m) => m.id);
  await db.batch([
    db
      .update(webhookMessages)
      .set({ status: "pending", nextAttemptAt: null, leaseUntil: null, updatedAt: new Date().toISOString() })
      // The ids as one JSON parameter (a statement binds at most 100), each found by its key.
      .where(and(eq(webhookMessages.tenantId, c.var.tenant.id), sql`${webhookMessages.id} IN (SELECT value FROM json_each(${JSON.stringify(ids)}))`, sql`+${webhookMessages.status} = 'failed'`)),
    auditChange(c, { action: "webhook_endpoint.recovered", resourceType: "webhook_endpoint", resourceId: endpointId, details: { since, messages: ids.length } }),
  ]);
  await send(c.env, c.var.tenant.id, ids);
  return ids.length;
}

/** Sends a `webhook.test` event to this endpoint alone. */
export async function testEndpoint(c: Context<AppEnv>, endpointId: string): Promise<WebhookMessageRow> {
  const endpoint = await findEndpoint(c, endpointId);
  const now = new Date().toISOString();
  const eventId = newId("evt");
  const row: WebhookMessageRow = {
    id: newId("whm"),
    tenantId: c.var.tenant.id,
    endpointId: endpoint.id,
    eventId,
    eventType: "webhook.test",
    payload: JSON.stringify({ type: "webhook.test", timestamp: now, data: { endpoint_id: endpoint.id, message: "A test event from Tessera" } }),
    status: "pending",
    attempts: 0,
    nextAttemptAt: null,
    leaseUntil: null,
    lastStatusCode: null,
    lastError: null,
    createdAt: now,
    updatedAt: now,
  };
  await c.var.db.insert(webhookMessages).values(row);
  await send(c.env, c.var.tenant.id, [row.id]);
  return row;
}
