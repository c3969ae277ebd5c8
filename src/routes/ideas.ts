import { createRoute, z } from "@hono/zod-openapi";
import * as ideas from "../content/ideas";
import { IDEA_LIMITS, MAX_IDEAS_PER_RUN } from "../content/ideas";
import { PageQuery } from "../lib/pagination";
import { PostWithRevision, renderPost, renderRevision } from "./content-schemas";
import { errors, guarded, jsonBody, jsonResponse, pageOf, router } from "./openapi";
import { IdempotencyKey, RunSchema, renderRun } from "./run-schemas";

const IdParam = z.object({ id: z.string().min(1).max(64) });

const IdeaSchema = z
  .object({
    id: z.string(),
    campaign_id: z.string(),
    project_id: z.string(),
    run_id: z.string().openapi({ description: "The ideas run that wrote it" }),
    seq: z.number().int().openapi({ description: "Its place in the run's answer, from 0" }),
    title: z.string().max(IDEA_LIMITS.title),
    angle: z.string().max(IDEA_LIMITS.angle),
    channel: z.string(),
    draft: z.string().max(IDEA_LIMITS.draft),
    post_id: z.string().nullable().openapi({ description: "The post it became, once it did" }),
    created_at: z.string(),
  })
  .openapi("Idea");

const RequestIdeas = z
  .object({
    agent_id: z.string().min(1).max(64).openapi({ description: "The agent that writes them (in the campaign's project): its model, system prompt, persona and knowledge bases" }),
    count: z.number().int().min(1).max(MAX_IDEAS_PER_RUN),
    brief: z.string().trim().min(1).max(2000).optional().openapi({ description: "What to write about this time" }),
    persona_id: z.string().min(1).max(64).optional().openapi({ description: "A persona of the project to write in, instead of the agent's" }),
  })
  .openapi("RequestIdeas");

const requestIdeas = createRoute({
  method: "post",
  path: "/v1/campaigns/{id}/ideas",
  tags: ["Campaigns"],
  summary: "Queue a run that writes content ideas for the campaign",
  description:
    "Answers 202 with the run (queued, billed and cancelable like every run: `GET /v1/runs/{id}`, its events, `POST /v1/runs/{id}/cancel`). The model is asked for JSON matching the ideas schema; an answer that does not match is asked for again, and after 3 tries the run fails with `malformed_output`, storing nothing. A valid answer's ideas are stored with the run's success, all of them or none. With an Idempotency-Key, the same key and body return the same run.",
  ...guarded("campaigns:write"),
  request: { params: IdParam, headers: z.object({ "idempotency-key": IdempotencyKey }), body: jsonBody(RequestIdeas) },
  responses: { 202: jsonResponse(RunSchema, "The queued ideas run"), ...errors(400, 401, 403, 404, 409, 415, 429, 503) },
});

const listIdeas = createRoute({
  method: "get",
  path: "/v1/campaigns/{id}/ideas",
  tags: ["Campaigns"],
  summary: "The campaign's ideas, newest first",
  ...guarded("campaigns:read"),
  request: { params: IdParam, query: PageQuery.extend({ run_id: z.string().min(1).max(64).optional() }) },
  responses: { 200: jsonResponse(pageOf(IdeaSchema), "A page of ideas"), ...errors(400, 401, 403, 404) },
});

const getIdea = createRoute({
  method: "get",
  path: "/v1/ideas/{id}",
  tags: ["Campaigns"],
  summary: "Get an idea",
  ...guarded("campaigns:read"),
  request: { params: IdParam },
  responses: { 200: jsonResponse(IdeaSchema, "The idea"), ...errors(401, 403, 404) },
});

const ideaToPost = createRoute({
  method: "post",
  path: "/v1/ideas/{id}/post",
  tags: ["Campaigns"],
  summary: "Make the idea a draft post in its campaign (once: again answers the same post)",
  ...guarded("posts:write"),
  request: { params: IdParam },
  responses: { 201: jsonResponse(PostWithRevision, "The new post"), 200: jsonResponse(PostWithRevision, "The post it already became"), ...errors(401, 403, 404, 409) },
});

/** Campaign ideas: written by a queued run, each made a post with one call. */
export const ideaRoutes = router()
  .openapi(requestIdeas, async (c) => {
    const { run, replayed } = await ideas.requestIdeas(c, c.req.valid("param").id, c.req.valid("json"), c.req.valid("header")["idempotency-key"]);
    return c.json(renderRun(run), 202, { location: `/v1/runs/${run.id}`, ...(replayed && { "idempotent-replayed": "true" }) });
  })
  .openapi(listIdeas, async (c) => c.json(await ideas.listIdeas(c, c.req.valid("param").id, c.req.valid("query"), ideas.renderIdea), 200))
  .openapi(getIdea, async (c) => c.json(ideas.renderIdea(await ideas.findIdea(c, c.req.valid("param").id)), 200))
  .openapi(ideaToPost, async (c) => {
    const { post, revision, created } = await ideas.ideaToPost(c, c.req.valid("param").id);
    const body = { ...renderPost(post), current: renderRevision(revision) };
    return created ? c.json(body, 201) : c.json(body, 200);
  });
