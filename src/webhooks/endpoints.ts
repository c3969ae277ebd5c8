import { and, eq } from "drizzle-orm";
import type { Context } from "hono";
import type { AppEnv } from "../context";
import { auditChange } from "../db/audit";
import { insertWithin } from "../db/insert-where";
import { EVENT_TYPES } from "../db/outbox";
import { findOwned, listOwned } from "../db/owned";
import { webhookEndpoints } from "../db/tenant/schema";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { forgetEndpoints } from "./dispatch";
import { newSecret } from "./signing";
import { seal, unseal } from "../lib/crypto";
import { checkEndpointUrl } from "./urls";

export type EndpointRow = typeof webhookEndpoints.$inferSelect;

/** The most endpoints a tenant may have. */
export const MAX_ENDPOINTS = 50;
/** How long the previous secret still signs after a rotation. */
export const ROTATION_OVERLAP_MS = 24 * 60 * 60 * 1000;

export type FilterValue = string | number | boolean;

export interface EndpointFields {
  url?: string;
  description?: string | null;
  event_types?: string[] | null;
  filter?: Record<string, FilterValue> | null;
  rate_limit_per_second?: number | null;
  disabled?: boolean;
}

const isEndpoint = (c: Context<AppEnv>, id: string) => and(eq(webhookEndpoints.tenantId, c.var.tenant.id), eq(webhookEndpoints.id, id));

export const findEndpoint = (c: Context<AppEnv>, id: string) => findOwned(c.var.db, webhookEndpoints, c.var.tenant.id, id, "webhook endpoint");

export const listEndpoints = <U>(c: Context<AppEnv>, q: { limit: number; cursor?: string }, render: (row: EndpointRow) => U) =>
  listOwned(c.var.db, webhookEndpoints, c.var.tenant.id, { ...q, prefix: "whe" }, render);

/**
 * Signing secrets are stored sealed (AES-256-GCM under SECRETS_KEY, bound to their endpoint), so a
 * copy of the tenant's database does not sign for its endpoints. One made before sealing (it
 * starts `whsec_`) still reads as itself.
 */
const sealContext = (e: { tenantId: string; id: string }) => `webhook_endpoint:${e.tenantId}:${e.id}`;
const sealSecret = (key: string, e: { tenantId: string; id: string }, secret: string) => seal(key, secret, sealContext(e));
const openSecret = (key: string, e: { tenantId: string; id: string }, stored: string) => (stored.startsWith("whsec_") ? Promise.resolve(stored) : unseal(key, stored, sealContext(e)));

/** The secrets that sign a delivery now: the current one, and the previous one during a rotation's overlap. */
export function liveSecrets(key: string, e: Pick<EndpointRow, "tenantId" | "id" | "secret" | "previousSecret" | "previousSecretExpiresAt">, now = Date.now()): Promise<string[]> {
  const stored = e.previousSecret && e.previousSecretExpiresAt && Date.parse(e.previousSecretExpiresAt) > now ? [e.secret, e.previousSecret] : [e.secret];
  return Promise.all(stored.map((s) => openSecret(key, e, s)));
}

function eventTypesOf(types: string[] | null | undefined): string | null {
  if (!types) return null;
  const unknown = types.filter((t) => !(EVENT_TYPES as readonly string[]).includes(t));
  if (unknown.length) {
    throw new ApiError("VALIDATION_FAILED", `Unknown event types: ${unknown.join(", ")} (GET /v1/webhooks/event-types lists them)`, {
      errors: [{ in: "body", field: "event_types", message: `unknown: ${unknown.join(", ")}` }],
    });
  }
  return JSON.stringify([...new Set(types)]);
}

/** Creates an endpoint with a fresh signing secret (answered once, here). */
export async function createEndpoint(c: Context<AppEnv>, body: EndpointFields & { url: string }): Promise<EndpointRow> {
  const url = checkEndpointUrl(body.url, c.var.config.BASE_DOMAIN).href;
  const now = new Date().toISOString();
  const id = newId("whe");
  const secret = newSecret();
  const row: EndpointRow = {
    id,
    tenantId: c.var.tenant.id,
    url,
    description: body.description ?? null,
    eventTypes: eventTypesOf(body.event_types),
    filter: body.filter ? JSON.stringify(body.filter) : null,
    rateLimitPerSecond: body.rate_limit_per_second ?? null,
    disabled: body.disabled ?? false,
    disabledReason: body.disabled ? "manual" : null,
    secret: await sealSecret(c.var.config.SECRETS_KEY, { tenantId: c.var.tenant.id, id }, secret),
    previousSecret: null,
    previousSecretExpiresAt: null,
    lastSuccessAt: null,
    failingSince: null,
    createdBy: c.var.principal.userId,
    createdAt: now,
    updatedAt: now,
  };
  const db = c.var.db;
  const [inserted] = await db.batch([
    insertWithin(db, webhookEndpoints, row, eq(webhookEndpoints.tenantId, row.tenantId), MAX_ENDPOINTS),
    auditChange(c, { action: "webhook_endpoint.created", resourceType: "webhook_endpoint", resourceId: row.id, details: { url } }),
  ]);
  if (!inserted.meta.changes) throw new ApiError("PLAN_LIMIT", `A tenant has at most ${MAX_ENDPOINTS} webhook endpoints`);
  forgetEndpoints(row.tenantId);
  return { ...row, secret };
}

/** Changes an endpoint's settings; enabling it again clears its failure record. */
export async function updateEndpoint(c: Context<AppEnv>, id: string, body: EndpointFields, action = "webhook_endpoint.updated"): Promise<EndpointRow> {
  const set: Partial<EndpointRow> = { updatedAt: new Date().toISOString() };
  if (body.url !== undefined) set.url = checkEndpointUrl(body.url, c.var.config.BASE_DOMAIN).href;
  if (body.description !== undefined) set.description = body.description;
  if (body.event_types !== undefined) set.eventTypes = eventTypesOf(body.event_types);
  if (body.filter !== undefined) set.filter = body.filter ? JSON.stringify(body.filter) : null;
  if (body.rate_limit_per_second !== undefined) set.rateLimitPerSecond = body.rate_limit_per_second;
  if (body.disabled !== undefined) Object.assign(set, body.disabled ? { disabled: true, disabledReason: "manual" } : { disabled: false, disabledReason: null, failingSince: null });
  const db = c.var.db;
  const [rows] = await db.batch([
    db.update(webhookEndpoints).set(set).where(isEndpoint(c, id)).returning(),
    auditChange(c, { action, resourceType: "webhook_endpoint", resourceId: id, details: { fields: Object.keys(body) } }),
  ]);
  if (!rows[0]) throw new ApiError("NOT_FOUND", `No webhook endpoint ${id}`);
  forgetEndpoints(c.var.tenant.id);
  return rows[0];
}

export async function deleteEndpoint(c: Context<AppEnv>, id: string): Promise<void> {
  const db = c.var.db;
  const [deleted] = await db.batch([
    db.delete(webhookEndpoints).where(isEndpoint(c, id)).returning({ id: webhookEndpoints.id }),
    auditChange(c, { action: "webhook_endpoint.deleted", resourceType: "webhook_endpoint", resourceId: id }),
  ]);
  if (!deleted[0]) throw new ApiError("NOT_FOUND", `No webhook endpoint ${id}`);
  forgetEndpoints(c.var.tenant.id);
}

/**
 * A new signing secret. The previous one keeps signing for 24 hours beside it (receivers accept
 * either while they switch), unless `revokePrevious` ends it at once.
 */
export async function rotateSecret(c: Context<AppEnv>, id: string, revokePrevious: boolean): Promise<EndpointRow> {
  const current = await findEndpoint(c, id);
  const secret = newSecret();
  const db = c.var.db;
  const [rows] = await db.batch([
    db
      .update(webhookEndpoints)
      .set({
        secret: await sealSecret(c.var.config.SECRETS_KEY, current, secret),
        previousSecret: revokePrevious ? null : current.secret,
        previousSecretExpiresAt: revokePrevious ? null : new Date(Date.now() + ROTATION_OVERLAP_MS).toISOString(),
        updatedAt: new Date().toISOString(),
      })
      // Over the secret read above: two rotations at once cannot both keep "the previous" one.
      .where(and(isEndpoint(c, id), eq(webhookEndpoints.secret, current.secret)))
      .returning(),
    auditChange(c, { action: "webhook_endpoint.secret_rotated", resourceType: "webhook_endpoint", resourceId: id, details: { revoke_previous: revokePrevious } }),
  ]);
  if (!rows[0]) throw new ApiError("CONFLICT", "The secret was rotated by another request at the same moment; rotate again if you need a new one");
  return { ...rows[0], secret };
}
