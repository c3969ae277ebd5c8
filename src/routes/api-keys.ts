import { createRoute, z } from "@hono/zod-openapi";
import { parseScopes } from "../auth/api-keys";
import { PERMISSIONS } from "../auth/permissions";
import { PageQuery } from "../lib/pagination";
import * as keys from "../members/api-keys";
import { errors, guarded, jsonBody, jsonResponse, NonBlank, pageOf, router } from "./openapi";

const ApiKeySchema = z
  .object({
    id: z.string(),
    name: z.string(),
    prefix: z.string().openapi({ description: "The first characters of the key, to recognise it" }),
    scopes: z.array(z.enum(PERMISSIONS)),
    created_by: z.string(),
    created_at: z.string(),
    expires_at: z.string().nullable(),
    rate_limit_per_minute: z.number().int().nullable(),
    last_used_at: z.string().nullable(),
  })
  .openapi("ApiKey");

const CreateApiKey = z
  .object({
    name: NonBlank(100),
    scopes: z.array(z.enum(PERMISSIONS)).min(1).max(PERMISSIONS.length),
    expires_at: z.iso.datetime({ offset: true }).optional().openapi({ description: "RFC 3339; must be in the future" }),
    rate_limit_per_minute: z.number().int().min(1).max(1_000_000).optional().openapi({ description: "The key's own limit; the plan's per-member limit applies when lower" }),
  })
  .openapi("CreateApiKey");

const createKey = createRoute({
  method: "post",
  path: "/v1/api-keys",
  tags: ["API keys"],
  summary: "Create an API key; the secret is in this response only",
  ...guarded("api_keys:write"),
  request: { body: jsonBody(CreateApiKey) },
  responses: { 201: jsonResponse(ApiKeySchema.extend({ key: z.string() }).openapi("ApiKeyCreated"), "The key, shown once"), ...errors(400, 401, 403, 415) },
});

const listKeys = createRoute({
  method: "get",
  path: "/v1/api-keys",
  tags: ["API keys"],
  summary: "List live API keys (never their secrets)",
  ...guarded("api_keys:read"),
  request: { query: PageQuery },
  responses: { 200: jsonResponse(pageOf(ApiKeySchema), "A page of keys"), ...errors(400, 401, 403) },
});

const revokeKey = createRoute({
  method: "delete",
  path: "/v1/api-keys/{id}",
  tags: ["API keys"],
  summary: "Revoke an API key; editors revoke only their own",
  ...guarded("api_keys:write"),
  request: { params: z.object({ id: z.string().min(1).max(64) }) },
  responses: { 204: { description: "Revoked" }, ...errors(401, 403, 404) },
});

const render = (k: keys.ApiKeyRow): z.infer<typeof ApiKeySchema> => ({
  id: k.id,
  name: k.name,
  prefix: k.prefix,
  scopes: parseScopes(k.scopes),
  created_by: k.createdBy,
  created_at: k.createdAt,
  expires_at: k.expiresAt,
  rate_limit_per_minute: k.rateLimitPerMinute,
  last_used_at: k.lastUsedAt,
});

/** API keys of the host's tenant. */
export const apiKeyRoutes = router()
  .openapi(createKey, async (c) => {
    const { row, key } = await keys.createKey(c, c.req.valid("json"));
    return c.json({ ...render(row), key }, 201);
  })
  .openapi(listKeys, async (c) => {
    const listed = await keys.listKeys(c, c.req.valid("query"));
    return c.json({ data: listed.data.map(render), next_cursor: listed.next_cursor }, 200);
  })
  .openapi(revokeKey, async (c) => {
    await keys.revokeKey(c, c.req.valid("param").id);
    return c.body(null, 204);
  });
