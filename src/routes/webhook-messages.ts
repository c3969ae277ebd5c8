import { createRoute, z } from "@hono/zod-openapi";
import { EVENT_TYPES } from "../db/outbox";
import { WEBHOOK_MESSAGE_STATUSES } from "../db/tenant/schema";
import { PageQuery } from "../lib/pagination";
import { catalogue } from "../webhooks/catalogue";
import * as messages from "../webhooks/messages";
import { errors, guarded, jsonBody, jsonResponse, pageOf, router } from "./openapi";

const MessageSchema = z
  .object({
    id: z.string(),
    endpoint_id: z.string(),
    event_id: z.string().openapi({ description: "Sent as webhook-id: the same on every attempt and replay" }),
    event_type: z.string(),
    payload: z.record(z.string(), z.unknown()).openapi({ description: "The body sent: {type, timestamp, data}" }),
    status: z.enum(WEBHOOK_MESSAGE_STATUSES),
    attempts: z.number().int(),
    next_attempt_at: z.string().nullable(),
    last_status_code: z.number().int().nullable(),
    last_error: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("WebhookMessage");

const AttemptSchema = z
  .object({
    id: z.string(),
    attempt: z.number().int(),
    status_code: z.number().int().nullable(),
    duration_ms: z.number().int(),
    response_body: z.string().nullable().openapi({ description: "The first 4 KiB of the answer" }),
    error: z.string().nullable(),
    created_at: z.string(),
  })
  .openapi("WebhookAttempt");

const EventTypeSchema = z.object({ type: z.string(), description: z.string(), schema: z.record(z.string(), z.unknown()), example: z.record(z.string(), z.unknown()) }).openapi("WebhookEventType");

const IdParam = z.object({ id: z.string().min(1).max(64) });

const eventTypes = createRoute({
  method: "get",
  path: "/v1/webhooks/event-types",
  tags: ["Webhooks"],
  summary: "Every event type the platform emits, with a JSON Schema of its payload and an example",
  ...guarded("webhooks:read"),
  responses: { 200: jsonResponse(z.object({ data: z.array(EventTypeSchema) }), "The event catalogue"), ...errors(401, 403) },
});

const listMessages = createRoute({
  method: "get",
  path: "/v1/webhooks/messages",
  tags: ["Webhooks"],
  summary: "List webhook messages, newest first",
  ...guarded("webhooks:read"),
  request: { query: PageQuery.extend({ endpoint_id: z.string().min(1).max(64).optional(), status: z.enum(WEBHOOK_MESSAGE_STATUSES).optional(), event_type: z.enum(EVENT_TYPES).optional() }) },
  responses: { 200: jsonResponse(pageOf(MessageSchema), "A page of messages"), ...errors(400, 401, 403) },
});

const getMessage = createRoute({
  method: "get",
  path: "/v1/webhooks/messages/{id}",
  tags: ["Webhooks"],
  summary: "Get a webhook message",
  ...guarded("webhooks:read"),
  request: { params: IdParam },
  responses: { 200: jsonResponse(MessageSchema, "The message"), ...errors(401, 403, 404) },
});

const listAttempts = createRoute({
  method: "get",
  path: "/v1/webhooks/messages/{id}/attempts",
  tags: ["Webhooks"],
  summary: "A message's delivery attempts, oldest first",
  ...guarded("webhooks:read"),
  request: { params: IdParam, query: PageQuery },
  responses: { 200: jsonResponse(pageOf(AttemptSchema), "A page of attempts"), ...errors(400, 401, 403, 404) },
});

const replay = createRoute({
  method: "post",
  path: "/v1/webhooks/messages/{id}/replay",
  tags: ["Webhooks"],
  summary: "Send a message again (a new attempt with the same webhook-id)",
  ...guarded("webhooks:write"),
  request: { params: IdParam },
  responses: { 202: jsonResponse(MessageSchema, "Queued"), ...errors(401, 403, 404, 409) },
});

const recover = createRoute({
  method: "post",
  path: "/v1/webhooks/endpoints/{id}/recover",
  tags: ["Webhooks"],
  summary: `Send again every failed message of the endpoint made since a time (at most ${messages.MAX_RECOVER})`,
  ...guarded("webhooks:write"),
  request: { params: IdParam, body: jsonBody(z.object({ since: z.iso.datetime({ offset: true }) }).openapi("RecoverWebhookEndpoint")) },
  responses: { 202: jsonResponse(z.object({ requeued: z.number().int() }), "How many were queued again"), ...errors(400, 401, 403, 404, 409, 415) },
});

const testEndpoint = createRoute({
  method: "post",
  path: "/v1/webhooks/endpoints/{id}/test",
  tags: ["Webhooks"],
  summary: "Send a webhook.test event to this endpoint",
  ...guarded("webhooks:write"),
  request: { params: IdParam },
  responses: { 202: jsonResponse(MessageSchema, "Queued"), ...errors(401, 403, 404) },
});

const render = (m: messages.WebhookMessageRow): z.infer<typeof MessageSchema> => ({
  id: m.id,
  endpoint_id: m.endpointId,
  event_id: m.eventId,
  event_type: m.eventType,
  payload: JSON.parse(m.payload) as Record<string, unknown>,
  status: m.status,
  attempts: m.attempts,
  next_attempt_at: m.nextAttemptAt === null ? null : new Date(m.nextAttemptAt).toISOString(),
  last_status_code: m.lastStatusCode,
  last_error: m.lastError,
  created_at: m.createdAt,
  updated_at: m.updatedAt,
});

const renderAttempt = (a: messages.AttemptRow): z.infer<typeof AttemptSchema> => ({
  id: a.id,
  attempt: a.attempt,
  status_code: a.statusCode,
  duration_ms: a.durationMs,
  response_body: a.responseBody,
  error: a.error,
  created_at: a.createdAt,
});

/** Webhook messages and their attempts: what was sent where, and how to send it again. */
export const webhookMessageRoutes = router()
  .openapi(eventTypes, (c) => c.json({ data: catalogue() }, 200))
  .openapi(listMessages, async (c) => c.json(await messages.listMessages(c, c.req.valid("query"), render), 200))
  .openapi(getMessage, async (c) => c.json(render(await messages.findMessage(c, c.req.valid("param").id)), 200))
  .openapi(listAttempts, async (c) => c.json(await messages.listAttempts(c, c.req.valid("param").id, c.req.valid("query"), renderAttempt), 200))
  .openapi(replay, async (c) => c.json(render(await messages.replayMessage(c, c.req.valid("param").id)), 202))
  .openapi(recover, async (c) => c.json({ requeued: await messages.recoverEndpoint(c, c.req.valid("param").id, c.req.valid("json").since) }, 202))
  .openapi(testEndpoint, async (c) => c.json(render(await messages.testEndpoint(c, c.req.valid("param").id)), 202));
