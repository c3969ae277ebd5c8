import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, isNull, lt } from "drizzle-orm";
import { insertApiKey, mintApiKey, parseScopes } from "../auth/api-keys";
import { revokeLiveAccess } from "../auth/revocation";
import { PERMISSIONS } from "../auth/permissions";
import { apiKeys } from "../db/control/schema";
import { controlDb } from "../db/router";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { decodeCursor, page, PageQuery } from "../lib/pagination";
import { recordAudit } from "../db/audit";
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

const render = (k: typeof apiKeys.$inferSelect): z.infer<typeof ApiKeySchema> => ({
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
    const body = c.req.valid("json");
    const principal = c.var.principal;
    const beyond = body.scopes.filter((s) => !principal.permissions.has(s));
    if (beyond.length) throw new ApiError("FORBIDDEN", `A key cannot hold more than its creator may do: ${beyond.join(", ")}`);
    if (body.expires_at && new Date(body.expires_at) <= new Date()) {
      throw new ApiError("VALIDATION_FAILED", "expires_at is in the past", { errors: [{ in: "body", field: "expires_at", message: "must be in the future" }] });
    }
    const minted = await mintApiKey();
    const row = await insertApiKey(controlDb(c.env), {
      id: newId("key"),
      tenantId: c.var.tenant.id,
      name: body.name,
      prefix: minted.prefix,
      hash: minted.hash,
      scopes: [...new Set(body.scopes)],
      createdBy: principal.userId,
      expiresAt: body.expires_at ? new Date(body.expires_at).toISOString() : null,
      rateLimitPerMinute: body.rate_limit_per_minute ?? null,
    });
    // The creator's membership ended or shrank after this request was authenticated.
    if (!row) throw new ApiError("FORBIDDEN", "Your current role does not grant these scopes");
    await recordAudit(c, { action: "api_key.created", resourceType: "api_key", resourceId: row.id, details: { name: row.name, scopes: parseScopes(row.scopes) } });
    return c.json({ ...render(row), key: minted.key }, 201);
  })
  .openapi(listKeys, async (c) => {
    const { limit, cursor } = c.req.valid("query");
    const rows = await controlDb(c.env)
      .select()
      .from(apiKeys)
      .where(and(eq(apiKeys.tenantId, c.var.tenant.id), isNull(apiKeys.revokedAt), cursor ? lt(apiKeys.id, decodeCursor(cursor, "key")) : undefined))
      .orderBy(desc(apiKeys.id))
      .limit(limit + 1);
    return c.json(page(rows, limit, render), 200);
  })
  .openapi(revokeKey, async (c) => {
    const { id } = c.req.valid("param");
    const tenantId = c.var.tenant.id;
    const db = controlDb(c.env);
    const key = await db.select().from(apiKeys).where(and(eq(apiKeys.id, id), eq(apiKeys.tenantId, tenantId), isNull(apiKeys.revokedAt))).get();
    if (!key) throw new ApiError("NOT_FOUND", `No API key ${id}`);
    const principal = c.var.principal;
    if (key.createdBy !== principal.userId && !principal.permissions.has("members:write")) {
      throw new ApiError("FORBIDDEN", "Only admins and owners revoke other members' keys");
    }
    await db.update(apiKeys).set({ revokedAt: new Date().toISOString() }).where(and(eq(apiKeys.id, id), eq(apiKeys.tenantId, tenantId))).run();
    await revokeLiveAccess(c.env, c.var.tenant, { apiKeyId: id }, "API key revoked");
    await recordAudit(c, { action: "api_key.revoked", resourceType: "api_key", resourceId: id });
    return c.body(null, 204);
  });
