import { createRoute, z } from "@hono/zod-openapi";
import * as rollouts from "../db/migrations/rollouts";
import { requirePlatformAdmin } from "../middleware/platform-admin";
import { errors, jsonBody, jsonResponse, router, ShardQuery } from "./openapi";

// Tenant schema rollouts over the database pool (the operator's, on the platform host): rules and SQL
// in src/db/migrations/rollouts.ts, the MigrationRunner Durable Object drives them.

const admin = [{ platformAdmin: [] }];

const RolloutSchema = z
  .object({
    id: z.string(),
    target: z.string(),
    canary: z.number().int(),
    shard: z.string().openapi({ description: "The shard whose databases it migrates" }),
    status: z.enum(["running", "paused", "failed", "completed"]),
    total: z.number().int(),
    progress: z.object({ done: z.number().int(), failed: z.number().int(), pending: z.number().int() }),
    failure: z.object({ database: z.string(), migration: z.string().nullable(), statement: z.string().nullable(), error: z.string() }).nullable(),
    created_at: z.string(),
    updated_at: z.string(),
    completed_at: z.string().nullable(),
    databases: z.array(z.object({ database: z.string(), tenant_id: z.string().nullable(), schema: z.string(), state: z.enum(["done", "failed", "pending"]) })).optional(),
  })
  .openapi("MigrationRollout");
const RolloutRef = z.object({ id: z.string().min(1).max(64) });

const startRollout = createRoute({
  method: "post",
  path: "/v1/platform/migrations",
  tags: ["Platform"],
  summary: "Roll the tenant schema out over the pool: the canary databases first, then the rest",
  description: "Driven by a Durable Object, a few databases at a time; a database already at the target costs one read. A failure stops the rollout and names the database, the migration and the statement; that database stays at its previous version. One rollout at a time per shard (409); `?shard=` picks the shard.",
  security: admin,
  middleware: [requirePlatformAdmin()] as const,
  request: {
    query: z.object({ shard: ShardQuery }),
    body: jsonBody(
      z.object({
        target: z.string().min(1).max(100).optional().openapi({ description: "A bundled migration's name; the newest by default" }),
        canary: z.number().int().min(0).max(5000).optional().openapi({ description: "How many databases (the first by binding) go first" }),
      }),
    ),
  },
  responses: { 202: jsonResponse(RolloutSchema, "Started"), ...errors(400, 401, 409, 415) },
});

const listRollouts = createRoute({
  method: "get",
  path: "/v1/platform/migrations",
  tags: ["Platform"],
  summary: "The newest schema rollouts",
  security: admin,
  middleware: [requirePlatformAdmin()] as const,
  request: { query: z.object({ shard: ShardQuery }) },
  responses: { 200: jsonResponse(z.object({ data: z.array(RolloutSchema) }), "Rollouts, newest first"), ...errors(400, 401) },
});

const getRollout = createRoute({
  method: "get",
  path: "/v1/platform/migrations/{id}",
  tags: ["Platform"],
  summary: "A rollout's progress (done / failed / pending), and with ?databases=true where each database is",
  security: admin,
  middleware: [requirePlatformAdmin()] as const,
  request: { params: RolloutRef, query: z.object({ databases: z.enum(["true", "false"]).optional() }) },
  responses: { 200: jsonResponse(RolloutSchema, "The rollout"), ...errors(400, 401, 404) },
});

const pauseRollout = (paused: boolean) =>
  createRoute({
    method: "post",
    path: `/v1/platform/migrations/{id}/${paused ? "pause" : "resume"}`,
    tags: ["Platform"],
    summary: paused ? "Pause a running rollout (the step under way finishes)" : "Resume a paused rollout",
    security: admin,
    middleware: [requirePlatformAdmin()] as const,
    request: { params: RolloutRef },
    responses: { 200: jsonResponse(RolloutSchema, "The rollout"), ...errors(401, 404, 409) },
  });

/** Schema rollouts: start, follow, pause and resume. */
export const migrationRoutes = router()
  .openapi(startRollout, async (c) => c.json(await rollouts.renderRollout(c.env, (await rollouts.startRollout(c.env, c.req.valid("json"))).id), 202))
  .openapi(listRollouts, async (c) => c.json({ data: await rollouts.listRollouts(c.env) }, 200))
  .openapi(getRollout, async (c) => c.json(await rollouts.renderRollout(c.env, c.req.valid("param").id, c.req.valid("query").databases === "true"), 200))
  .openapi(pauseRollout(true), async (c) => c.json(await rollouts.renderRollout(c.env, (await rollouts.setPaused(c.env, c.req.valid("param").id, true)).id), 200))
  .openapi(pauseRollout(false), async (c) => c.json(await rollouts.renderRollout(c.env, (await rollouts.setPaused(c.env, c.req.valid("param").id, false)).id), 200));
