import { createRoute, z } from "@hono/zod-openapi";
import { PageQuery } from "../lib/pagination";
import * as prompts from "../prompts/store";
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

type VersionRow = prompts.VersionRow;

const renderVersion = (v: VersionRow): z.infer<typeof VersionSchema> => ({
  version: v.version,
  template: v.template,
  variables: JSON.parse(v.variables) as string[],
  weight: v.weight,
  note: v.note,
  created_by: v.createdBy,
  created_at: v.createdAt,
});

const renderPrompt = ({ prompt, versions }: { prompt: prompts.PromptRow; versions: prompts.VersionRow[] }): z.infer<typeof PromptSchema> => ({
  key: prompt.key,
  latest_version: prompt.latestVersion,
  versions: versions.map(renderVersion),
  created_at: prompt.createdAt,
  updated_at: prompt.updatedAt,
});

/** Prompts: keys with immutable, weighted versions. */
export const promptRoutes = router()
  .openapi(createVersion, async (c) => c.json(renderVersion(await prompts.createVersion(c, c.req.valid("param").key, c.req.valid("json"))), 201))
  .openapi(listPrompts, async (c) => {
    const { rows, next_cursor } = await prompts.listPrompts(c, c.req.valid("query"));
    const data = rows.map((p) => ({ key: p.key, latest_version: p.latestVersion, created_at: p.createdAt, updated_at: p.updatedAt }));
    return c.json({ data, next_cursor }, 200);
  })
  .openapi(getPrompt, async (c) => c.json(renderPrompt(await prompts.findPrompt(c, c.req.valid("param").key)), 200))
  .openapi(getVersion, async (c) => {
    const { key, version } = c.req.valid("param");
    return c.json(renderVersion(await prompts.findVersion(c, key, version)), 200);
  })
  .openapi(setWeights, async (c) => c.json(renderPrompt(await prompts.setWeights(c, c.req.valid("param").key, c.req.valid("json").weights)), 200))
  .openapi(getStats, async (c) => c.json(await prompts.promptStats(c, c.req.valid("param").key), 200));
