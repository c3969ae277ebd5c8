import { and, eq, sql } from "drizzle-orm";
import type { Context } from "hono";
import type { AppEnv } from "../context";
import { auditChange } from "../db/audit";
import { insertWhere } from "../db/insert-where";
import { eventAfterChange } from "../db/outbox";
import { type TenantDb, tenantDb } from "../db/router";
import { approvalPolicies, postReminders, postRevisions, postReviews, posts } from "../db/tenant/schema";
import type { Env } from "../env";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { requireProject } from "../projects/store";
import { connectedChannels } from "./channels";
import { scheduled } from "./publishing";
import { findPost, isPost, type PostRow, postData, type Variant } from "./posts";

/** One level of a review: who may approve at it (any member who may review, when null) and how many must. */
export interface ReviewLevel {
  name: string;
  reviewers: string[] | null;
  required: number;
  remind_after_hours: number | null;
}

export type PolicyMode = (typeof approvalPolicies.$inferSelect)["mode"];

export interface Policy {
  project_id: string;
  mode: PolicyMode;
  levels: ReviewLevel[];
  updated_at: string | null;
}

/** The levels a mode implies when none are given: `required` is one approval by anyone who may review. */
const ONE_APPROVAL: ReviewLevel[] = [{ name: "Approval", reviewers: null, required: 1, remind_after_hours: null }];
/** How many times a review that raced another is tried again. */
const REVIEW_TRIES = 3;

/** The read of a project's policy row, to batch with other reads. */
const policyRow = (db: TenantDb, tenantId: string, projectId: string) => db.select().from(approvalPolicies).where(and(eq(approvalPolicies.tenantId, tenantId), eq(approvalPolicies.projectId, projectId)));

/** A policy as its row says; a project that never set one reviews nothing (`none`). */
const asPolicy = (projectId: string, row: typeof approvalPolicies.$inferSelect | undefined): Policy =>
  row ? { project_id: projectId, mode: row.mode, levels: JSON.parse(row.levels) as ReviewLevel[], updated_at: row.updatedAt } : { project_id: projectId, mode: "none", levels: [], updated_at: null };

/** The project's approval policy (404 for a project the tenant does not have). */
export async function getPolicy(c: Context<AppEnv>, projectId: string): Promise<Policy> {
  await requireProject(c, projectId, "query");
  return asPolicy(projectId, (await policyRow(c.var.db, c.var.tenant.id, projectId))[0]);
}

/**
 * Sets a project's policy. `multi_level` needs its levels (1–5, in order); `required` is one
 * level, by default one approval by anyone who may review; `none` and `optional` have none. A
 * policy applies to posts submitted after it: a post under review keeps the levels it was given.
 */
export async function setPolicy(c: Context<AppEnv>, projectId: string, body: { mode: PolicyMode; levels?: ReviewLevel[] }): Promise<Policy> {
  await requireProject(c, projectId, "query");
  let levels: ReviewLevel[] = [];
  if (body.mode === "multi_level") {
    if (!body.levels?.length) throw new ApiError("VALIDATION_FAILED", "A multi-level policy needs its levels", { errors: [{ in: "body", field: "levels", message: "required for multi_level" }] });
    levels = body.levels;
  } else if (body.mode === "required") {
    if (body.levels && body.levels.length > 1) throw new ApiError("VALIDATION_FAILED", "A required policy has one level; use multi_level for more", { errors: [{ in: "body", field: "levels", message: "at most one level" }] });
    levels = body.levels?.length ? body.levels : ONE_APPROVAL;
  } else if (body.levels?.length) {
    throw new ApiError("VALIDATION_FAILED", `A ${body.mode} policy has no levels`, { errors: [{ in: "body", field: "levels", message: `not used by ${body.mode}` }] });
  }
  levels.forEach((l, i) => {
    if (l.reviewers && l.reviewers.length < l.required) {
      throw new ApiError("VALIDATION_FAILED", `Level ${l.name} needs ${l.required} approvals from ${l.reviewers.length} reviewers`, { errors: [{ in: "body", field: `levels.${i}.required`, message: "more than its reviewers" }] });
    }
  });
  const now = new Date().toISOString();
  const row = { tenantId: c.var.tenant.id, projectId, mode: body.mode, levels: JSON.stringify(levels), updatedBy: c.var.principal.userId, updatedAt: now };
  const db = c.var.db;
  await db.batch([
    db
      .insert(approvalPolicies)
      .values(row)
      .onConflictDoUpdate({ target: [approvalPolicies.tenantId, approvalPolicies.projectId], set: { mode: row.mode, levels: row.levels, updatedBy: row.updatedBy, updatedAt: now } }),
    auditChange(c, { action: "approval_policy.updated", resourceType: "project", resourceId: projectId, details: { mode: body.mode, levels: levels.length } }),
  ]);
  return { project_id: projectId, mode: body.mode, levels, updated_at: now };
}

const invalidState = (post: PostRow, doing: string) =>
  new ApiError("INVALID_STATE", `Post ${post.id} is ${post.status}; it cannot be ${doing}`, { errors: [{ in: "path", field: "status", message: `is ${post.status}` }] });

const stale = (post: PostRow, revision: number) =>
  new ApiError("STALE_REVISION", `Revision ${revision} is not the current one: post ${post.id} is at revision ${post.revision}`, { errors: [{ in: "body", field: "revision", message: `current is ${post.revision}` }] });

/**
 * Submits a post for review with its project's policy: under `none` it is approved at once (its
 * current revision); otherwise it is `in_review` with the policy's levels fixed on the post.
 */
export async function submitPost(c: Context<AppEnv>, id: string): Promise<PostRow> {
  const post = await findPost(c, id);
  if (post.status !== "draft" && post.status !== "changes_requested") throw invalidState(post, "submitted");
  const policy = asPolicy(post.projectId, (await policyRow(c.var.db, post.tenantId, post.projectId))[0]);
  const approveNow = policy.mode === "none";
  // Under `optional` a review is one approval by anyone who may review, unless the policy says more.
  const levels = policy.mode === "optional" && !policy.levels.length ? ONE_APPROVAL : policy.levels;
  const now = new Date().toISOString();
  const db = c.var.db;
  const eventId = newId("evt");
  const [updated] = await db.batch([
    db
      .update(posts)
      .set(approveNow ? { status: "approved", approvedRevision: post.revision, reviewLevels: "[]", updatedAt: now } : { status: "in_review", reviewLevels: JSON.stringify(levels), reviewStartedAt: now, updatedAt: now })
      .where(and(isPost(c, id), eq(posts.status, post.status), eq(posts.revision, post.revision)))
      .returning(),
    eventAfterChange(db, { id: eventId, tenantId: post.tenantId, type: "post.submitted", subjectType: "post", subjectId: id, data: { ...postData(post), status: approveNow ? "approved" : "in_review", policy: policy.mode } }),
    ...(approveNow ? [eventAfterChange(db, { tenantId: post.tenantId, type: "post.approved", subjectType: "post", subjectId: id, data: { ...postData(post), status: "approved", approved_revision: post.revision } })] : []),
    auditChange(c, { action: "post.submitted", resourceType: "post", resourceId: id, details: { revision: post.revision, policy: policy.mode } }),
  ]);
  if (!updated[0]) throw invalidState(await findPost(c, id), "submitted");
  return updated[0];
}

/** The post and the approvals of one of its revisions, read in one round trip; 404 without the post. */
async function postAndApprovals(c: Context<AppEnv>, postId: string, revision: number) {
  const db = c.var.db;
  const [found, approvals] = await db.batch([
    db.select().from(posts).where(isPost(c, postId)),
    db
      .select({ level: postReviews.level, reviewerId: postReviews.reviewerId })
      .from(postReviews)
      .where(and(eq(postReviews.tenantId, c.var.tenant.id), eq(postReviews.postId, postId), eq(postReviews.revision, revision), eq(postReviews.decision, "approved"))),
  ]);
  if (!found[0]) throw new ApiError("NOT_FOUND", `No post ${postId}`);
  return { post: found[0], approvals };
}

const countAt = (postId: string, revision: number, level: number) =>
  sql`(SELECT count(*) FROM ${postReviews} WHERE ${postReviews.postId} = ${postId} AND ${postReviews.revision} = ${revision} AND ${postReviews.level} = ${level} AND ${postReviews.decision} = 'approved')`;

/** The reviewer: a member (user id) or a guest by review link. */
export interface Reviewer {
  type: "user" | "guest";
  id: string;
}

/**
 * Approves revision `revision` of a post under review. The approval counts at the first level its
 * reviewer may approve at that still needs approvals (levels pass in order); when the last level
 * has its approvals, the post is `approved` with this revision. The revision, the post's status and
 * the level's count are conditions of the writes, so concurrent approvals and edits end in one
 * consistent state. Approving again is a no-op answering the post; a stale revision is a 409 naming
 * the current one.
 */
export async function approvePost(c: Context<AppEnv>, id: string, revision: number, reviewer: Reviewer, comment: string | null = null): Promise<PostRow> {
  const db = c.var.db;
  for (let attempt = 1; ; attempt++) {
    const { post, approvals } = await postAndApprovals(c, id, revision);
    if (approvals.some((a) => a.reviewerId === reviewer.id) && (post.status === "approved" || post.status === "scheduled" || post.status === "in_review") && (post.revision === revision || post.approvedRevision === revision)) return post;
    if (post.status !== "in_review") throw invalidState(post, "approved");
    if (post.revision !== revision) throw stale(post, revision);
    const levels = JSON.parse(post.reviewLevels ?? "[]") as ReviewLevel[];
    const counts = levels.map((_, i) => approvals.filter((a) => a.level === i).length);
    const level = levels.findIndex((l, i) => counts[i]! < l.required);
    if (level === -1) throw invalidState(post, "approved again");
    const open = levels[level]!;
    if (open.reviewers && !open.reviewers.includes(reviewer.id)) {
      throw new ApiError("FORBIDDEN", `Post ${id} awaits approval at level ${level + 1} (${open.name}), which you are not a reviewer of`);
    }
    const now = new Date().toISOString();
    const passed = levels.map((l, i) => sql`${countAt(id, revision, i)} >= ${l.required}`);
    const [review, , approved] = await db.batch([
      // The approval lands only while the post is under review at this revision and its level still needs it.
      insertWhere(
        db,
        postReviews,
        { id: newId("prv"), tenantId: post.tenantId, postId: id, revision, level, decision: "approved", reviewerType: reviewer.type, reviewerId: reviewer.id, comment, createdAt: now },
        sql`EXISTS (SELECT 1 FROM ${posts} WHERE ${posts.id} = ${id} AND ${posts.status} = 'in_review' AND ${posts.revision} = ${revision}) AND ${countAt(id, revision, level)} < ${open.required}`,
      )
        .onConflictDoNothing()
        .returning({ id: postReviews.id }),
      auditChange(c, { action: "post.review_approved", resourceType: "post", resourceId: id, details: { revision, level: level + 1, reviewer_type: reviewer.type } }),
      db
        .update(posts)
        .set({ status: "approved", approvedRevision: revision, updatedAt: now })
        .where(and(isPost(c, id), eq(posts.status, "in_review"), eq(posts.revision, revision), ...passed))
        .returning(),
      eventAfterChange(db, { tenantId: post.tenantId, type: "post.approved", subjectType: "post", subjectId: id, data: { ...postData(post), status: "approved", approved_revision: revision } }),
    ]);
    if (approved[0]) return approved[0];
    if (review[0]) return { ...post, updatedAt: now };
    // An edit, another review or another approval moved things between the read and the write: look again.
    if (attempt >= REVIEW_TRIES) throw new ApiError("CONFLICT", `Post ${id} is being reviewed by others right now; try again`);
  }
}

/** Asks for changes on revision `revision` of a post under review: it goes back to its author as `changes_requested`. */
export async function requestChanges(c: Context<AppEnv>, id: string, revision: number, reviewer: Reviewer, comment: string): Promise<PostRow> {
  const post = await findPost(c, id);
  if (post.status !== "in_review") throw invalidState(post, "sent back for changes");
  if (post.revision !== revision) throw stale(post, revision);
  const levels = JSON.parse(post.reviewLevels ?? "[]") as ReviewLevel[];
  if (reviewer.type === "user" && levels.length && levels.every((l) => l.reviewers && !l.reviewers.includes(reviewer.id))) {
    throw new ApiError("FORBIDDEN", `You are not a reviewer of post ${id}`);
  }
  const now = new Date().toISOString();
  const db = c.var.db;
  const [updated] = await db.batch([
    db
      .update(posts)
      .set({ status: "changes_requested", updatedAt: now })
      .where(and(isPost(c, id), eq(posts.status, "in_review"), eq(posts.revision, revision)))
      .returning(),
    insertWhere(db, postReviews, { id: newId("prv"), tenantId: post.tenantId, postId: id, revision, level: -1, decision: "changes_requested", reviewerType: reviewer.type, reviewerId: reviewer.id, comment, createdAt: now }, sql`changes() > 0`).onConflictDoNothing(),
    eventAfterChange(db, { tenantId: post.tenantId, type: "post.changes_requested", subjectType: "post", subjectId: id, data: { ...postData(post), status: "changes_requested", comment } }),
    auditChange(c, { action: "post.changes_requested", resourceType: "post", resourceId: id, details: { revision, reviewer_type: reviewer.type } }),
  ]);
  if (updated[0]) return updated[0];
  const now2 = await findPost(c, id);
  throw now2.revision !== revision ? stale(now2, revision) : invalidState(now2, "sent back for changes");
}

/**
 * Schedules the post's publication at `at` (in the future). What is published is fixed now: the
 * approved revision, or — where the policy does not require approval (`none`, `optional`) — the
 * current one. Scheduling again moves the time.
 */
export async function schedulePost(c: Context<AppEnv>, id: string, at: string): Promise<PostRow> {
  if (Date.parse(at) <= Date.now()) throw new ApiError("VALIDATION_FAILED", `${at} is in the past`, { errors: [{ in: "body", field: "at", message: "must be in the future" }] });
  const post = await findPost(c, id);
  // The policy, the revision to publish and the project's channels: one round trip.
  const revision = post.status === "approved" || post.status === "scheduled" || post.status === "failed" ? (post.approvedRevision ?? post.scheduledRevision ?? post.revision) : post.revision;
  const db = c.var.db;
  const [policyRows, revisionRows, channelRows] = await db.batch([
    policyRow(db, post.tenantId, post.projectId),
    db.select({ variants: postRevisions.variants }).from(postRevisions).where(and(eq(postRevisions.tenantId, post.tenantId), eq(postRevisions.postId, id), eq(postRevisions.revision, revision))),
    connectedChannels(db, post.tenantId, post.projectId),
  ]);
  const policy = asPolicy(post.projectId, policyRows[0]);
  const approvalOptional = policy.mode === "none" || policy.mode === "optional";
  // A post whose publishing failed may be scheduled again: the same revision, at a new time.
  const schedulable = post.status === "approved" || post.status === "scheduled" || post.status === "failed" || (approvalOptional && (post.status === "draft" || post.status === "in_review" || post.status === "changes_requested"));
  if (!schedulable) throw invalidState(post, `scheduled (the project's policy is ${policy.mode}: approve it first)`);
  // Every channel of that revision must have an account connected in the project.
  const variants = JSON.parse(revisionRows[0]?.variants ?? "[]") as Variant[];
  const connected = new Set(channelRows.map((r) => r.channel));
  const missing = variants.findIndex((v) => !connected.has(v.channel));
  if (missing >= 0) {
    throw new ApiError("VALIDATION_FAILED", `The project has no ${variants[missing]!.channel} account connected (POST /v1/projects/${post.projectId}/channels)`, {
      errors: [{ in: "body", field: `variants.${missing}.channel`, message: "not connected in this project" }],
    });
  }
  const when = new Date(at).toISOString();
  const [updated] = await db.batch([
    db
      .update(posts)
      .set({ status: "scheduled", scheduledAt: when, scheduledRevision: revision, publishError: null, updatedAt: new Date().toISOString() })
      .where(and(isPost(c, id), eq(posts.status, post.status), eq(posts.revision, post.revision)))
      .returning(),
    eventAfterChange(db, { tenantId: post.tenantId, type: "post.scheduled", subjectType: "post", subjectId: id, data: { ...postData(post), status: "scheduled", scheduled_at: when, scheduled_revision: revision } }),
    auditChange(c, { action: "post.scheduled", resourceType: "post", resourceId: id, details: { at: when, revision } }),
  ]);
  if (!updated[0]) throw new ApiError("CONFLICT", `Post ${id} changed while it was being scheduled; look at it again`);
  await scheduled(c, Date.parse(when));
  return updated[0];
}

/** Takes a scheduled post off the schedule: back to `approved` (or `draft`, when it was never approved). */
export async function unschedulePost(c: Context<AppEnv>, id: string): Promise<PostRow> {
  const post = await findPost(c, id);
  if (post.status !== "scheduled") throw invalidState(post, "unscheduled");
  const back = post.approvedRevision === post.scheduledRevision && post.approvedRevision !== null ? "approved" : "draft";
  const db = c.var.db;
  const [updated] = await db.batch([
    db
      .update(posts)
      .set({ status: back, scheduledAt: null, scheduledRevision: null, updatedAt: new Date().toISOString() })
      .where(and(isPost(c, id), eq(posts.status, "scheduled")))
      .returning(),
    eventAfterChange(db, { tenantId: post.tenantId, type: "post.unscheduled", subjectType: "post", subjectId: id, data: { ...postData(post), status: back, scheduled_at: null } }),
    auditChange(c, { action: "post.unscheduled", resourceType: "post", resourceId: id }),
  ]);
  if (!updated[0]) throw invalidState(await findPost(c, id), "unscheduled");
  return updated[0];
}

/** A post's reviews (approvals and requests for changes), oldest first. */
export async function listReviews(c: Context<AppEnv>, id: string) {
  await findPost(c, id);
  return c.var.db
    .select()
    .from(postReviews)
    .where(and(eq(postReviews.tenantId, c.var.tenant.id), eq(postReviews.postId, id)))
    .orderBy(postReviews.id)
    .limit(1000);
}

/** Posts under review looked at per sweep, per tenant. */
const REMIND_PER_PASS = 500;

/**
 * The cron sweep's part: for each post under review whose open level asks for a reminder
 * (`remind_after_hours`) and has waited that long — since the review began, or since the level
 * before it passed — a `post.review_reminder` event names the level and its reviewers, once per
 * revision and level (webhooks carry it to whoever reminds them). Answers how many it sent.
 */
export async function remindReviewers(env: Env, tenant: { id: string; dbBinding: string }, now = Date.now()): Promise<number> {
  const db = tenantDb(env, tenant);
  const waiting = await db
    .select()
    .from(posts)
    .where(and(eq(posts.tenantId, tenant.id), eq(posts.status, "in_review"), sql`${posts.reviewLevels} GLOB '*"remind_after_hours":[1-9]*'`))
    .limit(REMIND_PER_PASS);
  const candidates = waiting.filter((p) => (JSON.parse(p.reviewLevels ?? "[]") as ReviewLevel[]).some((l) => l.remind_after_hours));
  if (!candidates.length) return 0;
  const ids = JSON.stringify(candidates.map((p) => p.id));
  const approvals = await db
    .select({ postId: postReviews.postId, revision: postReviews.revision, level: postReviews.level, createdAt: postReviews.createdAt })
    .from(postReviews)
    .where(and(eq(postReviews.tenantId, tenant.id), sql`${postReviews.postId} IN (SELECT value FROM json_each(${ids}))`, eq(postReviews.decision, "approved")));
  const statements = [];
  for (const post of candidates) {
    const levels = JSON.parse(post.reviewLevels ?? "[]") as ReviewLevel[];
    const mine = approvals.filter((a) => a.postId === post.id && a.revision === post.revision);
    const level = levels.findIndex((l, i) => mine.filter((a) => a.level === i).length < l.required);
    const open = levels[level];
    if (!open?.remind_after_hours) continue;
    // The level has waited since the review began, or since the last approval of an earlier level.
    const since = Math.max(Date.parse(post.reviewStartedAt ?? post.updatedAt), ...mine.filter((a) => a.level < level).map((a) => Date.parse(a.createdAt)));
    if (now - since < open.remind_after_hours * 3_600_000) continue;
    statements.push(
      insertWhere(db, postReminders, { tenantId: tenant.id, postId: post.id, revision: post.revision, level, sentAt: new Date(now).toISOString() }, sql`1`)
        .onConflictDoNothing()
        .returning({ postId: postReminders.postId }),
      eventAfterChange(db, {
        tenantId: tenant.id,
        type: "post.review_reminder",
        subjectType: "post",
        subjectId: post.id,
        data: { ...postData(post), level: level + 1, level_name: open.name, reviewers: open.reviewers, waiting_since: new Date(since).toISOString() },
      }),
    );
  }
  if (!statements.length) return 0;
  const results = await db.batch(statements as unknown as [(typeof statements)[number], ...(typeof statements)[number][]]);
  // Every other result is a reminder's insert: the ones that wrote were sent now.
  return results.filter((r, i) => i % 2 === 0 && Array.isArray(r) && r.length > 0).length;
}
