import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import type { ZodError } from "zod";
import type { Permission } from "../auth/permissions";
import { MAX_MEMBER_PROJECTS } from "../members/members";
import type { AppEnv } from "../context";
import { requirePermission } from "../middleware/auth";
import { isPlatformPath } from "../middleware/host";
import { ApiError, ERROR_CODES, type ErrorCode, type FieldError } from "../lib/errors";
import { TENANT_STATUSES, type tenants } from "../db/control/schema";
import { SHARD_NAME } from "../shards/names";

const LOCATION: Record<string, string> = { json: "body", query: "query", param: "path", header: "header", cookie: "cookie", form: "body" };

/** Turns a zod failure into VALIDATION_FAILED naming every bad field. */
export function validationError(error: ZodError, target: string): ApiError {
  const where = LOCATION[target] ?? target;
  const errors: FieldError[] = error.issues.map((issue) => ({
    in: where,
    field: issue.path.length ? issue.path.map(String).join(".") : "(root)",
    message: issue.message,
  }));
  const fields = [...new Set(errors.map((e) => e.field))].join(", ");
  return new ApiError("VALIDATION_FAILED", `Invalid ${where}: ${fields}`, { errors });
}

const JSON_TYPE = /^application\/([\w.-]+\+)?json\s*(;|$)/i;

/** An OpenAPIHono whose validation failures all become problem+json. */
export function router() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (result.success) return;
      if (result.target === "json" && !JSON_TYPE.test(c.req.header("content-type") ?? "")) {
        throw new ApiError("UNSUPPORTED_MEDIA_TYPE", "Send the body as JSON with Content-Type: application/json");
      }
      throw validationError(result.error as ZodError, result.target);
    },
  });
}

/** The problem+json schema (RFC 9457) every error response uses. */
export const Problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.enum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]]),
    request_id: z.string(),
    errors: z.array(z.object({ in: z.string(), field: z.string(), message: z.string() })).optional(),
  })
  .openapi("Problem");

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: "Invalid request (a field, the Host header, or an upload that stopped early)",
  401: "Missing, invalid or another tenant's credential",
  403: "Not allowed for this role, key scope or tenant state",
  404: "Not found, or another tenant's",
  409: "Conflict",
  410: "Gone",
  413: "Body over 1 MiB",
  415: "Body is not JSON",
  426: "WebSocket upgrade required",
  429: "Rate limited; see Retry-After",
  503: "Temporarily unavailable",
};

/** The error responses of a route, as OpenAPI entries. */
export function errors(...statuses: number[]) {
  return Object.fromEntries(
    statuses.map((s) => [s, { description: ERROR_DESCRIPTIONS[s] ?? "Error", content: { "application/problem+json": { schema: Problem } } }]),
  );
}

/** A JSON request body entry. */
export function jsonBody<T extends z.ZodType>(schema: T) {
  return { required: true, content: { "application/json": { schema } } };
}

/** A JSON response entry. */
export function jsonResponse<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { "application/json": { schema } } };
}

/** JSON Schema keywords OpenAPI 3.1 has but zod-openapi's metadata type (3.0's) lacks, such as `propertyNames`. */
export function schema31(keywords: Record<string, unknown>): { description?: string } {
  return keywords;
}

/**
 * OpenAPI for a PATCH body's "give at least one field" rule, which zod states as a refinement the
 * document cannot show by itself: one of these properties is required.
 */
export function atLeastOneOf(shape: Record<string, unknown>) {
  return { anyOf: Object.keys(shape).map((key) => ({ required: [key] })) };
}

/** Bearer auth (an access JWT or an API key), named in each protected route's `security`. */
export const bearer: { bearer: string[] }[] = [{ bearer: [] }];

/** The `{data, next_cursor}` page every list route answers with. */
export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({ data: z.array(item), next_cursor: z.string().nullable() });
}

/** Protection for a tenant route: bearer auth, and the permission it needs, for docs and enforcement alike. */
export function guarded(permission: Permission, opens: "request" | "connection" = "request"): { security: { bearer: string[] }[]; middleware: MiddlewareHandler<AppEnv>[] } {
  return { security: bearer, middleware: [requirePermission(permission, { opens })] };
}

/** A knowledge chunk a grounded reply or run cites. */
export const CitationSchema = z
  .object({ index: z.number().int(), document_id: z.string(), document_name: z.string(), chunk_id: z.string(), knowledge_base_id: z.string(), score: z.number() })
  .openapi("Citation");

/** Knowledge bases a conversation or agent is grounded in: bases of its own project. */
export const KnowledgeBaseIds = z
  .array(z.string().min(1).max(64))
  .max(10)
  .openapi({ description: "Knowledge bases (of the same project) whose chunks ground its replies, cited in the answer" });

export const Email = z.string().trim().toLowerCase().email().max(254);

/** The projects a membership is limited to: a list (a client's is required), or null for every project. */
export const MemberProjects = z
  .array(z.string().min(1).max(64))
  .min(1)
  .max(MAX_MEMBER_PROJECTS)
  .nullable()
  .openapi({ description: `The projects the member sees and acts in (at most ${MAX_MEMBER_PROJECTS}); null for every project. Required for a client; owners and admins always reach every project` });
export const Password = z.string().min(10, "at least 10 characters").max(256);
/**
 * Text that must say something: trimmed, then 1 to `max` characters. The document states the
 * "not only spaces" half as a pattern, since it cannot state the trim.
 */
export function NonBlank(max: number) {
  return z.string().trim().min(1).max(max).openapi({ pattern: "\\S" });
}

export const PersonName = NonBlank(120);
/** A tenant slug: a lowercase DNS label. */
export const Slug = z
  .string()
  .min(2)
  .max(63)
  .regex(/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/, "a lowercase DNS label: a–z, 0–9 and inner hyphens");

/** A model name as the provider knows it. */
export const Model = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[@\w./:-]+$/, "a model name such as @cf/meta/llama-3.1-8b-instruct");

/** Tokens as signup, login, refresh and invitation acceptance return them. */
export const TokenPairSchema = z.object({
  access_token: z.string(),
  token_type: z.literal("Bearer"),
  expires_in: z.number().int(),
  refresh_token: z.string(),
});

type Operation = { responses?: Record<string, unknown>; requestBody?: unknown; security?: unknown[] };

/**
 * Adds to every `/v1` operation the errors any route of its kind can answer, which no single route
 * declares: a bad Host or field (400), an unknown tenant or id (404) and a limit (429) everywhere;
 * a suspended tenant (403) on tenant routes; credentials (401, 403) where the route has security;
 * body size and type (413, 415) where it takes a body. Declared statuses are left as they are.
 */
export function withCommonResponses<T extends { paths?: object }>(doc: T): T {
  for (const [path, item] of Object.entries((doc.paths ?? {}) as Record<string, Record<string, unknown>>)) {
    if (!path.startsWith("/v1/")) continue;
    const tenantRoute = !isPlatformPath(path);
    for (const [method, value] of Object.entries(item)) {
      if (!["get", "post", "put", "patch", "delete"].includes(method)) continue;
      const op = value as Operation;
      const statuses = [400, 404, 429];
      if (tenantRoute) statuses.push(403);
      if (op.security?.length) statuses.push(401, 403);
      if (op.requestBody) statuses.push(413, 415);
      op.responses ??= {};
      for (const [status, response] of Object.entries(errors(...statuses))) op.responses[status] ??= response;
    }
  }
  return doc;
}

/** A prompt's key, as prompts, agents and runs name it. */
export const PromptKey = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[a-z0-9][a-z0-9._-]*$/, "lowercase letters, digits, '.', '_' and '-', starting with a letter or digit");

/** A tenant's prepaid credit: the balance, and a page of its ledger. */
export const CreditsSchema = z
  .object({
    balance_micros: z.number().int(),
    data: z.array(z.object({ id: z.string(), amount_micros: z.number().int(), kind: z.enum(["grant", "debit"]), reason: z.string(), reference: z.string().nullable(), created_at: z.string() })),
    next_cursor: z.string().nullable(),
  })
  .openapi("Credits");

/** A tenant as the API shows it. */
export const TenantSchema = z
  .object({
    id: z.string(),
    slug: z.string(),
    name: z.string(),
    status: z.enum(TENANT_STATUSES),
    plan: z.string(),
    jurisdiction: z.enum(["default", "eu"]).openapi({ description: "Where its data lives (its database's jurisdiction)" }),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("Tenant");

/** Renders a tenant row. */
export function renderTenant(t: typeof tenants.$inferSelect): z.infer<typeof TenantSchema> {
  return { id: t.id, slug: t.slug, name: t.name, status: t.status, plan: t.planId, jurisdiction: t.jurisdiction, created_at: t.createdAt, updated_at: t.updatedAt };
}

export const UserSchema = z.object({ id: z.string(), email: z.string(), name: z.string(), created_at: z.string() }).openapi("User");

/** A user as the API shows them (never the password hash). */
export function renderUser(u: { id: string; email: string; name: string; createdAt: string }): z.infer<typeof UserSchema> {
  return { id: u.id, email: u.email, name: u.name, created_at: u.createdAt };
}

/** `?shard=` on the pool and rollout routes: the router sends the request to that shard's Worker (src/shards/). */
export const ShardQuery = z
  .string()
  .regex(SHARD_NAME)
  .optional()
  .openapi({ description: "The shard to act on (each shard's Worker binds its own databases); the shard that answers by default" });
