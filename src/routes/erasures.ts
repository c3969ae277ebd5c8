import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import { base64url } from "jose";
import { runTenantWork } from "../compliance/delegation";
import * as erasure from "../compliance/erasure";
import { users } from "../db/control/schema";
import { controlDb, JURISDICTIONS } from "../db/router";
import { ApiError } from "../lib/errors";
import { publicRoute, requireAuth } from "../middleware/auth";
import { requirePlatformAdmin } from "../middleware/platform-admin";
import { bearer, errors, jsonBody, jsonResponse, router } from "./openapi";

const StepSchema = z.object({ name: z.string(), done: z.boolean(), deleted: z.number().int(), pseudonymised: z.number().int() });
const ErasureSchema = z
  .object({
    id: z.string(),
    subject: z.object({ type: z.enum(["user", "tenant"]), id: z.string() }),
    requested_by: z.enum(["platform", "subject"]),
    status: z.enum(["queued", "running", "completed", "failed"]),
    steps: z.array(StepSchema).openapi({ description: "Each store's step as it finishes (counts so far)" }),
    error: z.string().nullable(),
    created_at: z.string(),
    started_at: z.string().nullable(),
    completed_at: z.string().nullable(),
    receipt: z.record(z.string(), z.unknown()).nullable().openapi({ description: "The receipt's content, once completed (the same JSON the JWS signs)" }),
    receipt_jws: z
      .string()
      .nullable()
      .openapi({ description: "The receipt as a compact JWS (ES256) signed with the platform's key: verify it with /.well-known/jwks.json. Its payload is `receipt`." }),
  })
  .openapi("Erasure");

function render(row: erasure.ErasureRow): z.infer<typeof ErasureSchema> {
  const progress = JSON.parse(row.progress) as Record<string, { done: boolean; deleted: number; pseudonymised: number }>;
  return {
    id: row.id,
    subject: { type: row.subject, id: row.subjectId },
    requested_by: row.requestedBy,
    status: row.status,
    steps: Object.entries(progress).map(([name, s]) => ({ name, done: s.done, deleted: s.deleted, pseudonymised: s.pseudonymised })),
    error: row.error,
    created_at: row.createdAt,
    started_at: row.startedAt,
    completed_at: row.completedAt,
    // The receipt's content is the JWS's payload (signed once; the row keeps only the JWS).
    receipt: row.receipt ? JSON.parse(new TextDecoder().decode(base64url.decode(row.receipt.split(".")[1]!))) : null,
    receipt_jws: row.receipt,
  };
}

const admin = [{ platformAdmin: [] }];
const tags = ["Compliance"];
const ErasureRef = z.object({ id: z.string().max(64) });

const erasePerson = createRoute({
  method: "post",
  path: "/v1/erasures",
  tags,
  summary: "Erase a person everywhere (platform operator)",
  description:
    "Queued (202). Their account, sessions, keys, memberships and invitations go; in every tenant they belonged to, their rows are erased or pseudonymised as the erasure plan says (messages they wrote: text replaced, author a tombstone; audit entries keep the event), their exports are deleted and their uploads follow the tenant's policy. The only owner of a tenant cannot be erased (409). Asking again answers the same job (a failed one resumes).",
  security: admin,
  middleware: [requirePlatformAdmin()] as const,
  request: { body: jsonBody(z.object({ subject: z.literal("user"), user_id: z.string().min(1).max(64) })) },
  responses: { 202: jsonResponse(ErasureSchema, "The erasure job"), ...errors(400, 401, 404, 409, 415) },
});

const eraseTenant = createRoute({
  method: "post",
  path: "/v1/platform/tenants/{id}/erase",
  tags,
  summary: "Erase a suspended tenant and everything it stored (platform operator)",
  description:
    "Queued (202); the tenant must be suspended first (409). From now its hosts answer 404 and queue messages for it are dropped; the job empties every room, rate limiter, R2 object under its prefix, vector, KV entry, control row and its database, verifies the database empty, and only then returns it to the pool.",
  security: admin,
  middleware: [requirePlatformAdmin()] as const,
  request: { params: ErasureRef },
  responses: { 202: jsonResponse(ErasureSchema, "The erasure job"), ...errors(401, 404, 409) },
});

const getErasure = createRoute({
  method: "get",
  path: "/v1/erasures/{id}",
  tags,
  summary: "An erasure's progress per store, and its signed receipt once completed (platform operator)",
  security: admin,
  middleware: [requirePlatformAdmin()] as const,
  request: { params: ErasureRef },
  responses: { 200: jsonResponse(ErasureSchema, "The erasure"), ...errors(401, 404) },
});

const subjectReceipt = createRoute({
  method: "get",
  path: "/v1/erasures/{id}/receipt",
  tags,
  summary: "An erasure as its subject sees it, by the token DELETE /v1/me gave them (their account is gone)",
  middleware: [publicRoute()] as const,
  request: { params: ErasureRef, query: z.object({ token: z.string().min(1).max(100) }) },
  responses: { 200: jsonResponse(ErasureSchema, "The erasure"), ...errors(400, 404) },
});

const eraseMe = createRoute({
  method: "delete",
  path: "/v1/me",
  tags: ["Identity"],
  summary: "Erase your account and your personal data in every tenant",
  description:
    "Needs an access token (not an API key) and `confirm` set to your email. Queued (202): the answer carries the job and a `receipt_url` with a token — keep it, it is the only way to read your receipt once your account is gone.",
  security: bearer,
  middleware: [requireAuth()] as const,
  request: { query: z.object({ confirm: z.string().min(1).max(320).openapi({ description: "Your email, to confirm" }) }) },
  responses: {
    202: jsonResponse(z.object({ erasure: ErasureSchema, receipt_url: z.string().nullable() }), "The erasure job, and where its receipt will be"),
    ...errors(400, 401, 403, 409),
  },
});

const StepStateSchema = z.object({ done: z.boolean(), deleted: z.number().int().min(0), pseudonymised: z.number().int().min(0), cursor: z.string().max(200).optional(), doneAt: z.number().optional() });
const Ids = z.array(z.string().max(64)).max(10_000);
const Person = z.object({ userId: z.string().max(64), email: z.string().max(320), keyIds: Ids, familyIds: Ids, tombstones: z.object({ user: z.string().max(64), key: z.string().max(64), email: z.string().max(320) }) });
const Tenant = z.object({ id: z.string().max(64), dbBinding: z.string().max(64), jurisdiction: z.enum(JURISDICTIONS).optional(), shard: z.string().max(8).optional() });
/** The inventory needs the tenant; a step also needs what the inventory found of it. */
const TenantWorkBody = z.discriminatedUnion("part", [
  z.object({ part: z.literal("inventory"), person: Person, tenant: Tenant }),
  z.object({ part: z.literal("step"), person: Person, tenant: Tenant.extend({ uploads: z.enum(["keep", "erase"]), eventIds: Ids }), step: z.string().max(200), state: StepStateSchema }),
]);
const tenantWork = createRoute({
  method: "post",
  path: "/v1/platform/erasures/{id}/tenant-work",
  tags,
  summary: "A running person erasure's work in one tenant on this shard (sent by the router)",
  description:
    "The router runs a person's erasure; for a tenant whose database is on another shard it sends that shard this request — the tenant's inventory, or one step from its saved state — and keeps the answer in the job's progress. The tenant's database must be this shard's (409 otherwise).",
  security: admin,
  middleware: [requirePlatformAdmin()] as const,
  request: { params: ErasureRef, body: jsonBody(TenantWorkBody) },
  responses: { 200: jsonResponse(z.record(z.string(), z.unknown()), "The tenant's inventory, or the step's new state"), ...errors(400, 401, 404, 409, 415) },
});

/** Erasure of people and tenants, and their receipts. */
export const erasureRoutes = router()
  .openapi(erasePerson, async (c) => c.json(render((await erasure.requestPersonErasure(c.env, c.req.valid("json").user_id, "platform")).erasure), 202))
  .openapi(eraseTenant, async (c) => c.json(render(await erasure.requestTenantErasure(c.env, c.req.valid("param").id)), 202))
  .openapi(tenantWork, async (c) => c.json({ ...(await runTenantWork(c.env, c.req.valid("param").id, c.req.valid("json"))) }, 200))
  .openapi(getErasure, async (c) => c.json(render(await erasure.findErasure(c.env, c.req.valid("param").id)), 200))
  .openapi(subjectReceipt, async (c) => c.json(render(await erasure.erasureByToken(c.env, c.req.valid("param").id, c.req.valid("query").token)), 200))
  .openapi(eraseMe, async (c) => {
    const p = c.var.principal;
    if (p.kind !== "user") throw new ApiError("FORBIDDEN", "Erasing an account needs the person's own access token, not an API key");
    const user = await controlDb(c.env).select({ email: users.email }).from(users).where(eq(users.id, p.userId)).get();
    if (!user || user.email !== c.req.valid("query").confirm.trim().toLowerCase()) {
      throw new ApiError("VALIDATION_FAILED", "Set confirm to your account's email to erase it", { errors: [{ in: "query", field: "confirm", message: "must be your email" }] });
    }
    const { erasure: job, receiptToken } = await erasure.requestPersonErasure(c.env, p.userId, "subject");
    const platform = `${new URL(c.req.url).protocol}//${c.var.config.BASE_DOMAIN}${new URL(c.req.url).port ? `:${new URL(c.req.url).port}` : ""}`;
    return c.json({ erasure: render(job), receipt_url: receiptToken && `${platform}/v1/erasures/${job.id}/receipt?token=${receiptToken}` }, 202);
  });
