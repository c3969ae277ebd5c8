import { createRoute, z } from "@hono/zod-openapi";
import { and, asc, eq, gt, sql } from "drizzle-orm";
import type { Context } from "hono";
import type { AppEnv } from "../context";
import { actorOf, auditAfterChange, type AuditEntry } from "../db/audit";
import { tenantDb, type TenantDb } from "../db/router";
import { prompts, promptVersions, runs } from "../db/tenant/schema";
import { ApiError } from "../lib/errors";
import { decodeCursorValue, encodeCursor, PageQuery } from "../lib/pagination";
import { templateVariables } from "../runs/template";
import { errors, guarded, jsonBody, jsonResponse, PromptKey, router, schema31 } from "./openapi";

/** A prompt's key: lowercase letters, digits, `.`, `_` and `-`. */

const Template = z.string().min(1).max(32_000);
const Weight = z.number().int().min(0).max(1000);

const VersionSchema = z
  .object({
    version: z.number().int(),
    template: z.string(),
    variables: z.array(z.string()),
    weight: z.number().int().openapi({ description: "Share of runs that do not pin a version, relative to the other versions' weights" }),
    note: z.string().nullable(),
    created_by: z.string(),
    created_at: z.string(),
  })
  .openapi("PromptVersion");

const PromptSchema = z
  .object({ key: z.string(), latest_version: z.number().int(), versions: z.array(VersionSchema), created_at: z.string(), updated_at: z.string() })
  .openapi("Prompt");

const KeyParam = z.object({ key: PromptKey });
const VersionParam = KeyParam.extend({ version: z.coerce.number().int().min(1) });

const createVersion = createRoute({
  method: "post",
  path: "/v1/prompts/{key}/versions",
  tags: ["Prompts"],
  summary: "Add the next version of a prompt (creating the prompt with version 1)",
  description:
    "Versions are immutable. The first version takes all traffic (weight 100); later ones take none until `weight` is given here or set with PUT /v1/prompts/{key}/weights.",
  ...guarded("prompts:write"),
  request: {
    params: KeyParam,
    body: jsonBody(z.object({ template: Template, note: z.string().max(500).optional(), weight: Weight.optional() }).openapi("CreatePromptVersion")),
  },
  responses: { 201: jsonResponse(VersionSchema, "The new version"), ...errors(400, 401, 403, 415) },
});

const listPrompts = createRoute({
  method: "get",
  path: "/v1/prompts",
  tags: ["Prompts"],
  summary: "List prompts by key",
  ...guarded("prompts:read"),
  request: { query: PageQuery },
  responses: {
    200: jsonResponse(
      z.object({ data: z.array(PromptSchema.omit({ versions: true })), next_cursor: z.string().nullable() }),
      "A page of prompts (without their versions)",
    ),
    ...errors(400, 401, 403),
  },
});

const getPrompt = createRoute({
  method: "get",
  path: "/v1/prompts/{key}",
  tags: ["Prompts"],
  summary: "Get a prompt with all its versions and their weights",
  ...guarded("prompts:read"),
  request: { params: KeyParam },
  responses: { 200: jsonResponse(PromptSchema, "The prompt"), ...errors(400, 401, 403, 404) },
});

const getVersion = createRoute({
  method: "get",
  path: "/v1/prompts/{key}/versions/{version}",
  tags: ["Prompts"],
  summary: "Get one version of a prompt",
  ...guarded("prompts:read"),
  request: { params: VersionParam },
  responses: { 200: jsonResponse(VersionSchema, "The version"), ...errors(400, 401, 403, 404) },
});

const setWeights = createRoute({
  method: "put",
  path: "/v1/prompts/{key}/weights",
  tags: ["Prompts"],
  summary: "Split traffic across versions (A/B tests); versions not named get weight 0",
  ...guarded("prompts:write"),
  request: {
    params: KeyParam,
    body: jsonBody(
      z
        .object({
          weights: z
            .record(z.string().regex(/^[1-9]\d{0,5}$/, "a version number"), Weight)
            .refine((w) => Object.keys(w).length > 0, "name at least one version")
            // All zero is allowed: the prompt then serves only runs that pin a version.
            .openapi({ example: { "1": 50, "2": 50 }, minProperties: 1, ...schema31({ propertyNames: { pattern: "^[1-9]\\d{0,5}$" } }) }),
        })
        .openapi("PromptWeights"),
    ),
  },
  responses: { 200: jsonResponse(PromptSchema, "The prompt with its new weights"), ...errors(400, 401, 403, 404, 415) },
});

const VersionStats = z
  .object({
    version: z.number().int(),
    weight: z.number().int(),
    runs: z.number().int(),
    succeeded: z.number().int(),
    failed: z.number().int(),
    canceled: z.number().int(),
    in_progress: z.number().int(),
    failure_rate: z.number().nullable().openapi({ description: "failed / (succeeded + failed); null before any finished" }),
    tokens_in: z.number().int(),
    tokens_out: z.number().int(),
    avg_tokens_per_run: z.number().nullable(),
    avg_latency_ms: z.number().nullable().openapi({ description: "Mean time from start to finish of succeeded runs" }),
    max_latency_ms: z.number().nullable(),
  })
  .openapi("PromptVersionStats");

const getStats = createRoute({
  method: "get",
  path: "/v1/prompts/{key}/stats",
  tags: ["Prompts"],
  summary: "Compare a prompt's versions: runs, failures, tokens, latency",
  ...guarded("prompts:read"),
  request: { params: KeyParam },
  responses: { 200: jsonResponse(z.object({ key: z.string(), versions: z.array(VersionStats) }), "Per-version statistics"), ...errors(400, 401, 403, 404) },
});

type VersionRow = typeof promptVersions.$inferSelect;

const renderVersion = (v: VersionRow): z.infer<typeof VersionSchema> => ({
  version: v.version,
  template: v.template,
  variables: JSON.parse(v.variables) as string[],
  weight: v.weight,
  note: v.note,
  created_by: v.createdBy,
  created_at: v.createdAt,
});

/** A prompt of this tenant with its versions (oldest first), or 404. */
async function findPrompt(c: Context<AppEnv>, key: string) {
  const tenant = c.var.tenant;
  const db = c.var.db;
  const [found, versions] = await db.batch([
    db.select().from(prompts).where(and(eq(prompts.tenantId, tenant.id), eq(prompts.key, key))),
    db.select().from(promptVersions).where(and(eq(promptVersions.tenantId, tenant.id), eq(promptVersions.promptKey, key))).orderBy(asc(promptVersions.version)),
  ]);
  if (!found[0]) throw new ApiError("NOT_FOUND", `No prompt ${key}`);
  return { prompt: found[0], versions };
}

const renderPrompt = ({ prompt, versions }: Awaited<ReturnType<typeof findPrompt>>): z.infer<typeof PromptSchema> => ({
  key: prompt.key,
  latest_version: prompt.latestVersion,
  versions: versions.map(renderVersion),
  created_at: prompt.createdAt,
  updated_at: prompt.updatedAt,
});

const audit = (c: Context<AppEnv>, db: TenantDb, entry: Omit<AuditEntry, "resourceType">) =>
  auditAfterChange(db, c.var.tenant.id, actorOf(c.var.principal), c.var.requestId, { ...entry, resourceType: "prompt" });

/** Prompts: keys with immutable, weighted versions. */
export const promptRoutes = router()
  .openapi(createVersion, async (c) => {
    const { key } = c.req.valid("param");
    const body = c.req.valid("json");
    const tenant = c.var.tenant;
    const db = c.var.db;
    const now = new Date().toISOString();
    const variables = JSON.stringify(templateVariables(body.template));
    // The counter and the version in one transaction: concurrent writers get consecutive numbers.
    const [, inserted] = await db.batch([
      db
        .insert(prompts)
        .values({ tenantId: tenant.id, key, latestVersion: 1, createdBy: c.var.principal.userId, createdAt: now, updatedAt: now })
        .onConflictDoUpdate({ target: [prompts.tenantId, prompts.key], set: { latestVersion: sql`${prompts.latestVersion} + 1`, updatedAt: now } }),
      db
        .insert(promptVersions)
        .select(
          sql`SELECT ${tenant.id}, ${key}, p.latest_version, ${body.template}, ${variables},
                CASE WHEN ${body.weight ?? null} IS NOT NULL THEN ${body.weight ?? null} WHEN p.latest_version = 1 THEN 100 ELSE 0 END,
                ${body.note ?? null}, ${c.var.principal.userId}, ${now}
              FROM ${prompts} p WHERE p.tenant_id = ${tenant.id} AND p.key = ${key}`,
        )
        .returning(),
      audit(c, db, { action: "prompt.version_created", resourceId: key }),
    ]);
    const row = inserted[0]!;
    return c.json(renderVersion(row), 201);
  })
  .openapi(listPrompts, async (c) => {
    const { limit, cursor } = c.req.valid("query");
    const tenant = c.var.tenant;
    const after = cursor ? decodeCursorValue(cursor) : undefined;
    const rows = await c.var.db
      .select()
      .from(prompts)
      .where(and(eq(prompts.tenantId, tenant.id), after !== undefined ? gt(prompts.key, after) : undefined))
      .orderBy(asc(prompts.key))
      .limit(limit + 1);
    const more = rows.length > limit;
    const data = rows.slice(0, limit).map((p) => ({ key: p.key, latest_version: p.latestVersion, created_at: p.createdAt, updated_at: p.updatedAt }));
    return c.json({ data, next_cursor: more ? encodeCursor(data.at(-1)!.key) : null }, 200);
  })
  .openapi(getPrompt, async (c) => c.json(renderPrompt(await findPrompt(c, c.req.valid("param").key)), 200))
  .openapi(getVersion, async (c) => {
    const { key, version } = c.req.valid("param");
    const tenant = c.var.tenant;
    const row = await c.var.db
      .select()
      .from(promptVersions)
      .where(and(eq(promptVersions.tenantId, tenant.id), eq(promptVersions.promptKey, key), eq(promptVersions.version, version)))
      .get();
    if (!row) throw new ApiError("NOT_FOUND", `No version ${version} of prompt ${key}`);
    return c.json(renderVersion(row), 200);
  })
  .openapi(setWeights, async (c) => {
    const { key } = c.req.valid("param");
    const { weights } = c.req.valid("json");
    const tenant = c.var.tenant;
    const found = await findPrompt(c, key);
    const known = new Set(found.versions.map((v) => v.version));
    const unknown = Object.keys(weights).filter((v) => !known.has(Number(v)));
    if (unknown.length) {
      throw new ApiError("NOT_FOUND", `Prompt ${key} has no version ${unknown.join(", ")}`, {
        errors: unknown.map((v) => ({ in: "body", field: `weights.${v}`, message: "no such version" })),
      });
    }
    const db = c.var.db;
    const cases = sql.join(
      Object.entries(weights).map(([v, w]) => sql`WHEN ${Number(v)} THEN ${w}`),
      sql` `,
    );
    await db.batch([
      db
        .update(promptVersions)
        .set({ weight: sql`CASE ${promptVersions.version} ${cases} ELSE 0 END` })
        .where(and(eq(promptVersions.tenantId, tenant.id), eq(promptVersions.promptKey, key))),
      audit(c, db, { action: "prompt.weights_changed", resourceId: key, details: { weights } }),
    ]);
    return c.json(renderPrompt({ ...found, versions: found.versions.map((v) => ({ ...v, weight: weights[String(v.version)] ?? 0 })) }), 200);
  })
  .openapi(getStats, async (c) => {
    const { key } = c.req.valid("param");
    const tenant = c.var.tenant;
    const { versions } = await findPrompt(c, key);
    const rows = await c.var.db
      .select({
        version: runs.promptVersion,
        runs: sql<number>`count(*)`,
        succeeded: sql<number>`sum(${runs.status} = 'SUCCEEDED')`,
        failed: sql<number>`sum(${runs.status} = 'FAILED')`,
        canceled: sql<number>`sum(${runs.status} = 'CANCELED')`,
        tokensIn: sql<number>`coalesce(sum(${runs.tokensIn}), 0)`,
        tokensOut: sql<number>`coalesce(sum(${runs.tokensOut}), 0)`,
        avgLatency: sql<number | null>`avg(CASE WHEN ${runs.status} = 'SUCCEEDED' THEN ${runs.latencyMs} END)`,
        maxLatency: sql<number | null>`max(CASE WHEN ${runs.status} = 'SUCCEEDED' THEN ${runs.latencyMs} END)`,
      })
      .from(runs)
      .where(and(eq(runs.tenantId, tenant.id), eq(runs.promptKey, key)))
      .groupBy(runs.promptVersion);
    const byVersion = new Map(rows.map((r) => [r.version, r]));
    return c.json(
      {
        key,
        versions: versions.map((v) => {
          const r = byVersion.get(v.version);
          const finished = (r?.succeeded ?? 0) + (r?.failed ?? 0);
          const total = r?.runs ?? 0;
          return {
            version: v.version,
            weight: v.weight,
            runs: total,
            succeeded: r?.succeeded ?? 0,
            failed: r?.failed ?? 0,
            canceled: r?.canceled ?? 0,
            in_progress: total - finished - (r?.canceled ?? 0),
            failure_rate: finished ? (r?.failed ?? 0) / finished : null,
            tokens_in: r?.tokensIn ?? 0,
            tokens_out: r?.tokensOut ?? 0,
            avg_tokens_per_run: total ? ((r?.tokensIn ?? 0) + (r?.tokensOut ?? 0)) / total : null,
            avg_latency_ms: r?.avgLatency === null || r?.avgLatency === undefined ? null : Math.round(r.avgLatency),
            max_latency_ms: r?.maxLatency ?? null,
          };
        }),
      },
      200,
    );
  });
