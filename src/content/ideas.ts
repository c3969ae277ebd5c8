import { z } from "@hono/zod-openapi";
import { and, eq, isNull, type SQL, sql } from "drizzle-orm";
import type { Context } from "hono";
import type { AppEnv } from "../context";
import { auditChange } from "../db/audit";
import { insertWhere } from "../db/insert-where";
import { findReachable, listReachable } from "../db/owned";
import type { TenantDb } from "../db/router";
import { ideas, posts } from "../db/tenant/schema";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { createRun } from "../runs/service";
import type { RunRow, StructuredOutput } from "../runs/store";
import { findCampaign } from "./campaigns";
import { connectedChannels } from "./channels";
import { findPostWithRevision, newPost, postLimitReached } from "./posts";

/**
 * Campaign ideas: a run of an agent (queued, billed, cancelable like every run) whose answer must be
 * JSON of one shape — `count` ideas, each a title, an angle, one of the campaign's channels and a
 * draft for it. The answer is validated against that schema before anything is stored; a malformed
 * one is asked for again, then the run fails saying why. A valid answer's ideas are written with the
 * run's success, all or none, and each becomes a post with one call.
 */

export const MAX_IDEAS_PER_RUN = 20;
export const IDEA_LIMITS = { title: 200, angle: 1000, draft: 10_000 } as const;
/** Model calls one attempt makes for an answer that fits the schema (the first and two more). */
export const OUTPUT_TRIES = 3;

export type IdeaRow = typeof ideas.$inferSelect;

/** The answer an ideas run must give, for its campaign's channels and count. */
export function ideasAnswer(spec: Pick<StructuredOutput, "count" | "channels">) {
  const idea = z.object({
    title: z.string().min(1).max(IDEA_LIMITS.title).describe("A headline for the post"),
    angle: z.string().min(1).max(IDEA_LIMITS.angle).describe("Why it speaks to the audience: the hook or point of view"),
    channel: z.enum(spec.channels as [string, ...string[]]).describe("The one channel it is written for"),
    draft: z.string().min(1).max(IDEA_LIMITS.draft).describe("The post's text, ready to edit, in the brand's voice"),
  });
  return z.object({ ideas: z.array(idea).length(spec.count) });
}

/** The JSON Schema the model is asked to answer in (Workers AI's JSON mode) and the answer is checked against. */
export const ideasJsonSchema = (spec: Pick<StructuredOutput, "count" | "channels">) => z.toJSONSchema(ideasAnswer(spec), { target: "draft-7" }) as Record<string, unknown>;

export type IdeasAnswer = z.infer<ReturnType<typeof ideasAnswer>>;

/** The model's text as the answer, or what is wrong with it (its first problem, with its place). */
export function parseIdeas(spec: StructuredOutput, text: string): { ok: true; value: IdeasAnswer } | { ok: false; problem: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, problem: "the answer is not JSON" };
  }
  const parsed = ideasAnswer(spec).safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { ok: false, problem: `${issue.path.join(".") || "answer"}: ${issue.message}` };
  }
  const banned = bannedWordIn(spec.banned_words ?? [], parsed.data);
  return banned ? { ok: false, problem: banned } : { ok: true, value: parsed.data };
}

/** The first use of a banned word (whole words, any case) in the ideas, with its place; null when there is none. */
function bannedWordIn(words: string[], answer: IdeasAnswer): string | null {
  if (!words.length) return null;
  const escaped = words.map((w) => w.trim()).filter(Boolean).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  if (!escaped.length) return null;
  const pattern = new RegExp(`(?<![\\p{L}\\p{N}])(${escaped.join("|")})(?![\\p{L}\\p{N}])`, "iu");
  for (const [i, idea] of answer.ideas.entries()) {
    for (const field of ["title", "angle", "draft"] as const) {
      const found = pattern.exec(idea[field]);
      if (found) return `ideas.${i}.${field}: uses the banned word "${found[1]}"`;
    }
  }
  return null;
}

/** The statements storing a run's ideas, from one JSON parameter (twenty ideas would pass D1's 100 bound parameters), if `guard` holds. */
export function ideaRecords(db: TenantDb, run: RunRow, spec: StructuredOutput, answer: IdeasAnswer, guard: SQL) {
  // Ids a millisecond apart in the answer's order, so a list (newest first) shows the last idea first, as it does for everything else.
  const now = Date.now();
  const list = JSON.stringify(answer.ideas.map((idea, seq) => [newId("ida", now + seq), seq, idea.title, idea.angle, idea.channel, idea.draft]));
  const col = (i: number) => sql`json_extract(j.value, ${`$[${i}]`})`;
  const row = { id: col(0), tenantId: run.tenantId, projectId: run.projectId, campaignId: spec.campaign_id, runId: run.id, seq: col(1), title: col(2), angle: col(3), channel: col(4), draft: col(5), postId: null };
  return [insertWhere(db, ideas, row, guard, sql`json_each(${list}) j`)];
}

/** What the runs consumer needs of a structured run: the schema to ask for, the check of an answer, and the rows a valid one becomes. */
export function structuredTask(spec: StructuredOutput) {
  return {
    schema: ideasJsonSchema(spec),
    parse: (text: string) => parseIdeas(spec, text),
    records: (db: TenantDb, run: RunRow, answer: IdeasAnswer, guard: SQL) => ideaRecords(db, run, spec, answer, guard),
    name: `Ideas for campaign ${spec.campaign_id}`,
  };
}

/** The message an ideas run sends: the campaign, the brief, and the shape of the answer. */
function ideasPrompt(campaign: { name: string; goal: string | null; startsOn: string | null; endsOn: string | null; tags: string }, spec: StructuredOutput, brief: string | undefined) {
  const tags = JSON.parse(campaign.tags) as string[];
  return [
    `Propose ${spec.count} content idea${spec.count === 1 ? "" : "s"} for the campaign "${campaign.name}".`,
    campaign.goal && `Goal: ${campaign.goal}`,
    `Channels: ${spec.channels.join(", ")}`,
    (campaign.startsOn || campaign.endsOn) && `Dates: ${campaign.startsOn ?? "open"} to ${campaign.endsOn ?? "open"}`,
    tags.length > 0 && `Tags: ${tags.join(", ")}`,
    brief && `Brief: ${brief}`,
    "Each idea has a title, its angle (why it speaks to the audience), one channel from the list and a draft post for that channel, in the brand's voice.",
    `Answer with JSON only, matching this JSON Schema: ${JSON.stringify(ideasJsonSchema(spec))}`,
  ]
    .filter(Boolean)
    .join("\n");
}

/**
 * Queues an ideas run for a campaign with `agent_id` (in the campaign's project; its persona, or
 * `persona_id`, leads the system prompt). The channels are the campaign's, or else the project's
 * connected ones. Answers the run, as `POST /v1/runs` does (an Idempotency-Key replays it).
 */
export async function requestIdeas(
  c: Context<AppEnv>,
  campaignId: string,
  body: { agent_id: string; count: number; brief?: string; persona_id?: string },
  idempotencyKey: string | undefined,
) {
  const campaign = await findCampaign(c, campaignId);
  if (campaign.status === "archived" || campaign.status === "completed") {
    throw new ApiError("INVALID_STATE", `Campaign ${campaignId} is ${campaign.status}; ideas are for campaigns still being planned or run`);
  }
  let channels = JSON.parse(campaign.channels) as string[];
  if (!channels.length) channels = (await connectedChannels(c.var.db, c.var.tenant.id, campaign.projectId)).map((r) => r.channel);
  if (!channels.length) {
    throw new ApiError("VALIDATION_FAILED", `Campaign ${campaignId} names no channels and its project has none connected: ideas are written for a channel`, {
      errors: [{ in: "path", field: "id", message: "the campaign has no channels" }],
    });
  }
  const spec: StructuredOutput = { kind: "ideas", campaign_id: campaignId, count: body.count, channels };
  const input = { campaign_id: campaignId, count: body.count, brief: body.brief ?? null, persona_id: body.persona_id ?? null };
  return createRun(c, { agent_id: body.agent_id, project_id: campaign.projectId, input }, idempotencyKey, {
    prompt: ideasPrompt(campaign, spec, body.brief),
    output: spec,
    personaId: body.persona_id,
  });
}

export const findIdea = (c: Context<AppEnv>, id: string) => findReachable(c, ideas, id, "idea");

/** A campaign's ideas, newest first; `run_id` narrows to one run's. */
export async function listIdeas<U>(c: Context<AppEnv>, campaignId: string, q: { limit: number; cursor?: string; run_id?: string }, render: (row: IdeaRow) => U) {
  await findCampaign(c, campaignId);
  return listReachable(c, ideas, { ...q, prefix: "ida", filters: [eq(ideas.campaignId, campaignId), q.run_id ? eq(ideas.runId, q.run_id) : undefined] }, render);
}

/**
 * Makes an idea a draft post in its campaign (its title, and its draft as the variant of its
 * channel). Once: the post is written only while the idea has none, and the idea is marked with it
 * in the same transaction, so two calls at once make one post and the other answers it (`created`
 * false).
 */
export async function ideaToPost(c: Context<AppEnv>, id: string) {
  const idea = await findIdea(c, id);
  if (idea.postId) return { ...(await findPostWithRevision(c, idea.postId)), created: false };
  const db = c.var.db;
  const isIdea = and(eq(ideas.tenantId, idea.tenantId), eq(ideas.id, id));
  const unused = sql`NOT EXISTS (SELECT 1 FROM ${ideas} WHERE ${isIdea} AND ${ideas.postId} IS NOT NULL)`;
  const variants = [{ channel: idea.channel, text: idea.draft, media: [], link: null }];
  const made = await newPost(c, { campaign_id: idea.campaignId, title: idea.title, variants }, unused);
  const [inserted] = await db.batch([
    ...made.statements,
    auditChange(c, { action: "idea.used", resourceType: "post", resourceId: made.post.id, details: { idea_id: id, run_id: idea.runId } }),
    db.update(ideas).set({ postId: made.post.id }).where(and(isIdea, isNull(ideas.postId), sql`EXISTS (SELECT 1 FROM ${posts} WHERE ${posts.id} = ${made.post.id})`)),
  ]);
  if (inserted[0]) return { post: made.post, revision: made.revision, created: true };
  const now = await findIdea(c, id);
  if (!now.postId) throw postLimitReached();
  return { ...(await findPostWithRevision(c, now.postId)), created: false };
}

/** An idea as the API shows it. */
export const renderIdea = (r: IdeaRow) => ({
  id: r.id,
  campaign_id: r.campaignId,
  project_id: r.projectId,
  run_id: r.runId,
  seq: r.seq,
  title: r.title,
  angle: r.angle,
  channel: r.channel,
  draft: r.draft,
  post_id: r.postId,
  created_at: r.createdAt,
});
