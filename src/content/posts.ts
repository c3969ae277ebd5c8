import { and, asc, eq, notInArray, type SQL, sql } from "drizzle-orm";
import type { Context } from "hono";
import { withinReach } from "../auth/reach";
import type { AppEnv } from "../context";
import { auditChange } from "../db/audit";
import { insertWhere, insertWithin } from "../db/insert-where";
import { eventAfterChange } from "../db/outbox";
import { assertReachable, findReachable, listReachable } from "../db/owned";
import { artifacts, artifactVersions, campaigns, postRevisions, posts } from "../db/tenant/schema";
import { sha256Hex } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { requireProject } from "../projects/store";

export type PostRow = typeof posts.$inferSelect;
export type RevisionRow = typeof postRevisions.$inferSelect;
export type PostStatus = PostRow["status"];

/** A post's content for one channel. */
export interface Variant {
  channel: string;
  text: string;
  media: { artifact_id: string; version: number }[];
  link: string | null;
}

/** The most posts a project holds. */
export const MAX_POSTS_PER_PROJECT = 100_000;
/** The most revisions a post keeps. */
export const MAX_REVISIONS = 500;
/** Statuses in which a post's content is fixed: being published, published, or archived. */
export const FROZEN: PostStatus[] = ["publishing", "published", "archived"];
/** How often an edit that raced another edit is tried again before it gives up. */
const EDIT_TRIES = 3;

/** What a post's events carry. */
export const postData = (p: PostRow) => ({
  id: p.id,
  project_id: p.projectId,
  campaign_id: p.campaignId,
  title: p.title,
  status: p.status,
  revision: p.revision,
  approved_revision: p.approvedRevision,
  scheduled_at: p.scheduledAt,
});

export const isPost = (c: Context<AppEnv>, id: string) => and(eq(posts.tenantId, c.var.tenant.id), eq(posts.id, id), withinReach(c, posts.projectId));

export const findPost = (c: Context<AppEnv>, id: string) => findReachable(c, posts, id, "post");

export const listPosts = <U>(c: Context<AppEnv>, q: { limit: number; cursor?: string; project_id?: string; campaign_id?: string; status?: PostStatus }, render: (row: PostRow) => U) =>
  listReachable(
    c,
    posts,
    {
      ...q,
      prefix: "pst",
      filters: [q.project_id ? eq(posts.projectId, q.project_id) : undefined, q.campaign_id ? eq(posts.campaignId, q.campaign_id) : undefined, q.status ? eq(posts.status, q.status) : undefined],
    },
    render,
  );

/** One revision of the tenant's post, or 404 naming it. */
export async function findRevision(c: Context<AppEnv>, postId: string, revision: number): Promise<RevisionRow> {
  await assertReachable(c, posts, postId, "post");
  const row = await c.var.db
    .select()
    .from(postRevisions)
    .where(and(eq(postRevisions.tenantId, c.var.tenant.id), eq(postRevisions.postId, postId), eq(postRevisions.revision, revision)))
    .get();
  if (!row) throw new ApiError("NOT_FOUND", `Post ${postId} has no revision ${revision}`);
  return row;
}

/** The post with its current revision, read in one round trip; 404 when the tenant has no such post. */
export async function findPostWithRevision(c: Context<AppEnv>, id: string): Promise<{ post: PostRow; revision: RevisionRow }> {
  const db = c.var.db;
  const tenantId = c.var.tenant.id;
  const [found, revisions] = await db.batch([
    db.select().from(posts).where(isPost(c, id)),
    db
      .select()
      .from(postRevisions)
      .where(and(eq(postRevisions.tenantId, tenantId), eq(postRevisions.postId, id), sql`${postRevisions.revision} = (SELECT p.revision FROM ${posts} p WHERE p.id = ${id} AND p.tenant_id = ${tenantId})`)),
  ]);
  if (!found[0] || !revisions[0]) throw new ApiError("NOT_FOUND", `No post ${id}`);
  return { post: found[0], revision: revisions[0] };
}

/** Every revision of the post, oldest first. */
export async function listRevisions(c: Context<AppEnv>, postId: string): Promise<RevisionRow[]> {
  await findPost(c, postId);
  return c.var.db
    .select()
    .from(postRevisions)
    .where(and(eq(postRevisions.tenantId, c.var.tenant.id), eq(postRevisions.postId, postId)))
    .orderBy(asc(postRevisions.revision))
    .limit(MAX_REVISIONS);
}

/** The variants in a fixed shape and order of keys, so equal content hashes equally. */
function canonical(title: string, variants: Variant[]): string {
  return JSON.stringify({ title, variants: variants.map((v) => ({ channel: v.channel, text: v.text, media: v.media.map((m) => ({ artifact_id: m.artifact_id, version: m.version })), link: v.link })) });
}

/**
 * Every media item must be a version of an artifact in the post's project: one read for all of
 * them; the first missing one is a 404 naming its place in the body.
 */
async function requireMedia(c: Context<AppEnv>, projectId: string, variants: Variant[]): Promise<void> {
  const wanted = variants.flatMap((v, i) => v.media.map((m, j) => ({ ...m, field: `variants.${i}.media.${j}` })));
  if (!wanted.length) return;
  const ids = JSON.stringify([...new Set(wanted.map((m) => m.artifact_id))]);
  const rows = await c.var.db
    .select({ artifactId: artifactVersions.artifactId, version: artifactVersions.version, projectId: artifacts.projectId })
    .from(artifactVersions)
    .innerJoin(artifacts, and(eq(artifacts.tenantId, artifactVersions.tenantId), eq(artifacts.id, artifactVersions.artifactId)))
    .where(and(eq(artifactVersions.tenantId, c.var.tenant.id), sql`${artifactVersions.artifactId} IN (SELECT value FROM json_each(${ids}))`));
  const have = new Set(rows.filter((r) => r.projectId === projectId).map((r) => `${r.artifactId}@${r.version}`));
  const missing = wanted.find((m) => !have.has(`${m.artifact_id}@${m.version}`));
  if (missing) {
    throw new ApiError("NOT_FOUND", `No version ${missing.version} of artifact ${missing.artifact_id} in this project`, { errors: [{ in: "body", field: missing.field, message: "no such artifact version in the post's project" }] });
  }
}

/** The channels named twice: a post has one variant per channel. */
function checkChannels(variants: Variant[]): void {
  const seen = new Set<string>();
  variants.forEach((v, i) => {
    if (seen.has(v.channel)) throw new ApiError("VALIDATION_FAILED", `Channel ${v.channel} has two variants`, { errors: [{ in: "body", field: `variants.${i}.channel`, message: "already has a variant" }] });
    seen.add(v.channel);
  });
}

/** Where a new post belongs: its campaign's project (a project_id naming another is a 400), or the project named. */
async function placement(c: Context<AppEnv>, body: { project_id?: string; campaign_id?: string | null }): Promise<{ projectId: string; campaignId: string | null }> {
  if (body.campaign_id) {
    const campaign = await c.var.db
      .select({ projectId: campaigns.projectId, status: campaigns.status })
      .from(campaigns)
      .where(and(eq(campaigns.tenantId, c.var.tenant.id), eq(campaigns.id, body.campaign_id), withinReach(c, campaigns.projectId)))
      .get();
    if (!campaign) throw new ApiError("NOT_FOUND", `No campaign ${body.campaign_id}`, { errors: [{ in: "body", field: "campaign_id", message: "no such campaign" }] });
    if (body.project_id && body.project_id !== campaign.projectId) {
      throw new ApiError("VALIDATION_FAILED", `Campaign ${body.campaign_id} is in project ${campaign.projectId}`, { errors: [{ in: "body", field: "project_id", message: "not the campaign's project" }] });
    }
    if (campaign.status === "archived") throw new ApiError("INVALID_STATE", `Campaign ${body.campaign_id} is archived`, { errors: [{ in: "body", field: "campaign_id", message: "archived" }] });
    return { projectId: campaign.projectId, campaignId: body.campaign_id };
  }
  if (!body.project_id) throw new ApiError("VALIDATION_FAILED", "A post needs a project_id or a campaign_id", { errors: [{ in: "body", field: "project_id", message: "required without campaign_id" }] });
  return { projectId: await requireProject(c, body.project_id), campaignId: null };
}

/**
 * A new post in `draft` with its first revision, checked (channels, placement, media), and the
 * statements that write it: the post (within the project's limit, and only while `when` holds),
 * its revision, its event and its audit entry, each only if the one before wrote. Not yet run.
 */
export async function newPost(c: Context<AppEnv>, body: { project_id?: string; campaign_id?: string | null; title: string; variants: Variant[] }, when?: SQL) {
  checkChannels(body.variants);
  const { projectId, campaignId } = await placement(c, body);
  await requireMedia(c, projectId, body.variants);
  const now = new Date().toISOString();
  const tenantId = c.var.tenant.id;
  const post: PostRow = {
    id: newId("pst"),
    tenantId,
    projectId,
    campaignId,
    title: body.title,
    status: "draft",
    revision: 1,
    reviewLevels: null,
    reviewStartedAt: null,
    approvedRevision: null,
    scheduledAt: null,
    scheduledRevision: null,
    publishError: null,
    publishLeaseUntil: null,
    publishedAt: null,
    createdBy: c.var.principal.userId,
    createdAt: now,
    updatedAt: now,
  };
  const revision: RevisionRow = { tenantId, postId: post.id, revision: 1, title: body.title, variants: JSON.stringify(body.variants), contentHash: await sha256Hex(canonical(body.title, body.variants)), authorId: c.var.principal.userId, createdAt: now };
  const db = c.var.db;
  const statements = [
    insertWithin(db, posts, post, and(eq(posts.tenantId, tenantId), eq(posts.projectId, projectId)), MAX_POSTS_PER_PROJECT, when).returning({ id: posts.id }),
    insertWhere(db, postRevisions, revision, sql`changes() > 0`),
    eventAfterChange(db, { tenantId, type: "post.created", subjectType: "post", subjectId: post.id, data: postData(post) }),
    auditChange(c, { action: "post.created", resourceType: "post", resourceId: post.id, details: { project_id: projectId, campaign_id: campaignId } }),
  ] as const;
  return { post, revision, statements };
}

export const postLimitReached = () => new ApiError("PLAN_LIMIT", `A project holds at most ${MAX_POSTS_PER_PROJECT} posts`);

/** Creates a post in `draft` with its first revision. */
export async function createPost(c: Context<AppEnv>, body: { project_id?: string; campaign_id?: string | null; title: string; variants: Variant[] }): Promise<{ post: PostRow; revision: RevisionRow }> {
  const { post, revision, statements } = await newPost(c, body);
  const [inserted] = await c.var.db.batch(statements);
  if (!inserted[0]) throw postLimitReached();
  return { post, revision };
}

/**
 * Edits a post: a new revision with the given title and variants (absent ones carried over). An
 * edit of an approved, scheduled or failed post returns it to `in_review` (its approval was of an
 * older revision; a schedule publishes only an approved revision); a post being published, published or
 * archived cannot be edited. With `base_revision`, an edit made on an older revision is a 409.
 * Concurrent edits each make their own revision, one after the other.
 */
export async function editPost(c: Context<AppEnv>, id: string, body: { title?: string; variants?: Variant[]; base_revision?: number }): Promise<{ post: PostRow; revision: RevisionRow }> {
  if (body.variants) checkChannels(body.variants);
  const db = c.var.db;
  for (let attempt = 1; ; attempt++) {
    const { post: current, revision: previous } = await findPostWithRevision(c, id);
    if (FROZEN.includes(current.status)) throw new ApiError("INVALID_STATE", `Post ${id} is ${current.status} and can no longer be edited`, { errors: [{ in: "path", field: "status", message: `is ${current.status}` }] });
    if (body.base_revision !== undefined && body.base_revision !== current.revision) {
      throw new ApiError("STALE_REVISION", `Post ${id} is at revision ${current.revision}; this edit was made on revision ${body.base_revision}`, { errors: [{ in: "body", field: "base_revision", message: `current is ${current.revision}` }] });
    }
    if (current.revision >= MAX_REVISIONS) throw new ApiError("PLAN_LIMIT", `A post keeps at most ${MAX_REVISIONS} revisions`);
    const title = body.title ?? previous.title;
    const variants = body.variants ?? (JSON.parse(previous.variants) as Variant[]);
    if (body.variants) await requireMedia(c, current.projectId, variants);
    const now = new Date().toISOString();
    const next = current.revision + 1;
    const reopen = current.status === "approved" || current.status === "scheduled" || current.status === "failed";
    // Back to review when it passed one; a post approved without review (policy none) goes back to draft.
    const reopened = (JSON.parse(current.reviewLevels ?? "[]") as unknown[]).length ? "in_review" : "draft";
    const revision: RevisionRow = { tenantId: current.tenantId, postId: id, revision: next, title, variants: JSON.stringify(variants), contentHash: await sha256Hex(canonical(title, variants)), authorId: c.var.principal.userId, createdAt: now };
    const [updated] = await db.batch([
      db
        .update(posts)
        .set({
          title,
          revision: next,
          updatedAt: now,
          ...(reopen && { status: reopened, approvedRevision: null, scheduledAt: null, scheduledRevision: null }),
          // A review in progress starts again on the new revision.
          ...((reopen ? reopened === "in_review" : current.status === "in_review") && { reviewStartedAt: now }),
        })
        .where(and(isPost(c, id), eq(posts.revision, current.revision), eq(posts.status, current.status), notInArray(posts.status, FROZEN)))
        .returning(),
      insertWhere(db, postRevisions, revision, sql`changes() > 0`),
      eventAfterChange(db, { tenantId: current.tenantId, type: "post.revised", subjectType: "post", subjectId: id, data: { ...postData({ ...current, title, revision: next, ...(reopen && { status: reopened, approvedRevision: null, scheduledAt: null }) }), content_hash: revision.contentHash, reopened: reopen } }),
      auditChange(c, { action: "post.revised", resourceType: "post", resourceId: id, details: { revision: next, reopened: reopen } }),
    ]);
    if (updated[0]) return { post: updated[0], revision };
    // Another edit or a review moved the post between the read and the write: look again.
    if (attempt >= EDIT_TRIES) throw new ApiError("CONFLICT", `Post ${id} is being changed by others right now; try again`);
  }
}

/** Archives a post (not while it is being published); its revisions and reviews are kept. */
export async function archivePost(c: Context<AppEnv>, id: string): Promise<PostRow> {
  const current = await findPost(c, id);
  const db = c.var.db;
  const [updated] = await db.batch([
    db
      .update(posts)
      .set({ status: "archived", scheduledAt: null, scheduledRevision: null, updatedAt: new Date().toISOString() })
      .where(and(isPost(c, id), notInArray(posts.status, ["publishing", "archived"])))
      .returning(),
    eventAfterChange(db, { tenantId: current.tenantId, type: "post.archived", subjectType: "post", subjectId: id, data: { ...postData(current), status: "archived", from: current.status } }),
    auditChange(c, { action: "post.archived", resourceType: "post", resourceId: id, details: { from: current.status } }),
  ]);
  if (!updated[0]) {
    const now = await findPost(c, id);
    throw new ApiError("INVALID_STATE", `Post ${id} is ${now.status}`, { errors: [{ in: "path", field: "status", message: `is ${now.status}` }] });
  }
  return updated[0];
}
