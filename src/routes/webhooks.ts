import { createRoute, z } from "@hono/zod-openapi";
import { PageQuery } from "../lib/pagination";
import * as endpoints from "../webhooks/endpoints";
import { atLeastOneOf, errors, guarded, jsonBody, jsonResponse, pageOf, router, schema31 } from "./openapi";

const FilterValue = z.union([z.string().max(256), z.number(), z.boolean()]);
const Filter = z
  .record(z.string().regex(/^[A-Za-z_][\w]{0,63}(\.[A-Za-z_][\w]{0,63}){0,4}$/, "a field path such as status or usage.model"), FilterValue)
  .refine((f) => Object.keys(f).length <= 10, "at most 10 fields")
  .openapi({ description: "Payload fields (dotted paths into `data`) and the value each must have", maxProperties: 10, ...schema31({ propertyNames: { pattern: "^[A-Za-z_]\\w{0,63}(\\.[A-Za-z_]\\w{0,63}){0,4}$" } }) });
const EventTypes = z.array(z.string().min(1).max(100)).min(1).max(50).openapi({ description: "Event types to receive (all when absent or null)" });

const EndpointFields = {
  url: z.string().min(1).max(2000).openapi({ description: "https only; a public host name (not an IP address, localhost, *.local, *.internal or the platform's own hosts)" }),
  description: z.string().max(500).nullable(),
  event_types: EventTypes.nullable(),
  filter: Filter.nullable(),
  rate_limit_per_second: z.number().int().min(1).max(1000).nullable(),
  disabled: z.boolean(),
};

const EndpointSchema = z
  .object({
    id: z.string(),
    url: z.string(),
    description: z.string().nullable(),
    event_types: z.array(z.string()).nullable(),
    filter: z.record(z.string(), FilterValue).nullable(),
    rate_limit_per_second: z.number().int().nullable(),
    disabled: z.boolean(),
    disabled_reason: z.string().nullable(),
    last_success_at: z.string().nullable(),
    failing_since: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("WebhookEndpoint");
const WithSecret = EndpointSchema.extend({ secret: z.string().openapi({ description: "The signing secret (whsec_…), shown only in this answer" }) }).openapi("WebhookEndpointWithSecret");

const IdParam = z.object({ id: z.string().min(1).max(64) });

const createEndpoint = createRoute({
  method: "post",
  path: "/v1/webhooks/endpoints",
  tags: ["Webhooks"],
  summary: "Create a webhook endpoint (its signing secret is answered once)",
  ...guarded("webhooks:write"),
  request: {
    body: jsonBody(
      z
        .object({ url: EndpointFields.url, description: EndpointFields.description.optional(), event_types: EndpointFields.event_types.optional(), filter: EndpointFields.filter.optional(), rate_limit_per_second: EndpointFields.rate_limit_per_second.optional(), disabled: EndpointFields.disabled.optional() })
        .openapi("CreateWebhookEndpoint"),
    ),
  },
  responses: { 201: jsonResponse(WithSecret, "The endpoint, with its secret"), ...errors(400, 401, 403, 413, 415) },
});

const listEndpoints = createRoute({
  method: "get",
  path: "/v1/webhooks/endpoints",
  tags: ["Webhooks"],
  summary: "List webhook endpoints, newest first",
  ...guarded("webhooks:read"),
  request: { query: PageQuery },
  responses: { 200: jsonResponse(pageOf(EndpointSchema), "A page of endpoints"), ...errors(400, 401, 403) },
});

const getEndpoint = createRoute({
  method: "get",
  path: "/v1/webhooks/endpoints/{id}",
  tags: ["Webhooks"],
  summary: "Get a webhook endpoint",
  ...guarded("webhooks:read"),
  request: { params: IdParam },
  responses: { 200: jsonResponse(EndpointSchema, "The endpoint"), ...errors(401, 403, 404) },
});

const updateEndpoint = createRoute({
  method: "patch",
  path: "/v1/webhooks/endpoints/{id}",
  tags: ["Webhooks"],
  summary: "Change a webhook endpoint",
  ...guarded("webhooks:write"),
  request: {
    params: IdParam,
    body: jsonBody(
      z
        .object({ url: EndpointFields.url.optional(), description: EndpointFields.description.optional(), event_types: EndpointFields.event_types.optional(), filter: EndpointFields.filter.optional(), rate_limit_per_second: EndpointFields.rate_limit_per_second.optional(), disabled: EndpointFields.disabled.optional() })
        .refine((b) => Object.keys(b).length > 0, "give at least one field")
        .openapi("UpdateWebhookEndpoint", atLeastOneOf(EndpointFields)),
    ),
  },
  responses: { 200: jsonResponse(EndpointSchema, "The endpoint"), ...errors(400, 401, 403, 404, 413, 415) },
});

const deleteEndpoint = createRoute({
  method: "delete",
  path: "/v1/webhooks/endpoints/{id}",
  tags: ["Webhooks"],
  summary: "Delete a webhook endpoint",
  ...guarded("webhooks:write"),
  request: { params: IdParam },
  responses: { 204: { description: "Deleted" }, ...errors(401, 403, 404) },
});

const toggle = (action: "disable" | "enable") =>
  createRoute({
    method: "post",
    path: `/v1/webhooks/endpoints/{id}/${action}`,
    tags: ["Webhooks"],
    summary: action === "disable" ? "Disable an endpoint (its messages are kept as failed, to recover later)" : "Enable an endpoint again (its failure record is cleared)",
    ...guarded("webhooks:write"),
    request: { params: IdParam },
    responses: { 200: jsonResponse(EndpointSchema, "The endpoint"), ...errors(401, 403, 404) },
  });

const rotateSecret = createRoute({
  method: "post",
  path: "/v1/webhooks/endpoints/{id}/rotate-secret",
  tags: ["Webhooks"],
  summary: "Rotate the signing secret: for 24 hours deliveries carry both signatures, unless revoke_previous",
  ...guarded("webhooks:write"),
  request: { params: IdParam, body: { ...jsonBody(z.object({ revoke_previous: z.boolean().optional() }).openapi("RotateWebhookSecret")), required: false } },
  responses: { 200: jsonResponse(WithSecret, "The endpoint, with its new secret"), ...errors(400, 401, 403, 404, 409, 415) },
});

const render = (e: endpoints.EndpointRow): z.infer<typeof EndpointSchema> => ({
  id: e.id,
  url: e.url,
  description: e.description,
  event_types: e.eventTypes ? (JSON.parse(e.eventTypes) as string[]) : null,
  filter: e.filter ? (JSON.parse(e.filter) as Record<string, endpoints.FilterValue>) : null,
  rate_limit_per_second: e.rateLimitPerSecond,
  disabled: e.disabled,
  disabled_reason: e.disabledReason,
  last_success_at: e.lastSuccessAt,
  failing_since: e.failingSince,
  created_at: e.createdAt,
  updated_at: e.updatedAt,
});

/** Webhook endpoints: where a tenant's events are delivered, signed per Standard Webhooks. */
export const webhookEndpointRoutes = router()
  .openapi(createEndpoint, async (c) => {
    const row = await endpoints.createEndpoint(c, c.req.valid("json"));
    return c.json({ ...render(row), secret: row.secret }, 201);
  })
  .openapi(listEndpoints, async (c) => c.json(await endpoints.listEndpoints(c, c.req.valid("query"), render), 200))
  .openapi(getEndpoint, async (c) => c.json(render(await endpoints.findEndpoint(c, c.req.valid("param").id)), 200))
  .openapi(updateEndpoint, async (c) => c.json(render(await endpoints.updateEndpoint(c, c.req.valid("param").id, c.req.valid("json"))), 200))
  .openapi(deleteEndpoint, async (c) => {
    await endpoints.deleteEndpoint(c, c.req.valid("param").id);
    return c.body(null, 204);
  })
  .openapi(toggle("disable"), async (c) => c.json(render(await endpoints.updateEndpoint(c, c.req.valid("param").id, { disabled: true }, "webhook_endpoint.disabled")), 200))
  .openapi(toggle("enable"), async (c) => c.json(render(await endpoints.updateEndpoint(c, c.req.valid("param").id, { disabled: false }, "webhook_endpoint.enabled")), 200))
  .openapi(rotateSecret, async (c) => {
    const body = c.req.valid("json") as { revoke_previous?: boolean } | undefined;
    const row = await endpoints.rotateSecret(c, c.req.valid("param").id, body?.revoke_previous ?? false);
    return c.json({ ...render(row), secret: row.secret }, 200);
  });
