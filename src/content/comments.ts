import { and, asc, eq, isNull } from "drizzle-orm";
import { assertReachable } from "../db/owned";
import type { Context } from "hono";
import type { AppEnv } from "../context";
import { auditChange } from "../db/audit";
import { insertWithin } from "../db/insert-where";
import { eventAfterChange } from "../db/outbox";
import { postComments, posts } from "../db/tenant/schema";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { findPost, findRevision, type Variant } from "./posts";
import type { Reviewer } from "./reviews";

export type CommentRow = typeof postComments.$inferSelect;

/** The most comments a post holds. */
export const MAX_COMMENTS_PER_POST = 2000;

export interface CommentInput {
  body: string;
  revision?: number;
  parent_id?: string | null;
  anchor?: { channel: string; start: number; end: number } | null;
}

const isComment = (c: Context<AppEnv>, postId: string, id: string) => and(eq(postComments.tenantId, c.var.tenant.id), eq(postComments.postId, postId), eq(postComments.id, id));

/**
 * Comments on a post: on a revision (the current one unless named), optionally anchored to a range
 * of one channel's text in that revision, or a reply in a thread (`parent_id`, which anchors it to
 * its thread's revision). A range outside the text, a channel the revision lacks, or a parent on
 * another post is a 4xx naming the field.
 */
export async function addComment(c: Context<AppEnv>, postId: string, input: CommentInput, author: Reviewer): Promise<CommentRow> {
  const post = await findPost(c, postId);
  let revision = input.revision ?? post.revision;
  if (input.parent_id) {
    const parent = await c.var.db.select().from(postComments).where(isComment(c, postId, input.parent_id)).get();
    if (!parent) throw new ApiError("NOT_FOUND", `No comment ${input.parent_id} on post ${postId}`, { errors: [{ in: "body", field: "parent_id", message: "no such comment on this post" }] });
    if (parent.parentId) throw new ApiError("VALIDATION_FAILED", "Reply to the thread's first comment", { errors: [{ in: "body", field: "parent_id", message: `is itself a reply to ${parent.parentId}` }] });
    revision = parent.revision;
  }
  const rev = await findRevision(c, postId, revision).catch(() => {
    throw new ApiError("NOT_FOUND", `Post ${postId} has no revision ${revision}`, { errors: [{ in: "body", field: "revision", message: "no such revision of this post" }] });
  });
  if (input.anchor) {
    const variant = (JSON.parse(rev.variants) as Variant[]).find((v) => v.channel === input.anchor!.channel);
    if (!variant) throw new ApiError("VALIDATION_FAILED", `Revision ${revision} has no ${input.anchor.channel} variant`, { errors: [{ in: "body", field: "anchor.channel", message: "no such variant in the revision" }] });
    if (input.anchor.start > input.anchor.end || input.anchor.end > variant.text.length) {
      throw new ApiError("VALIDATION_FAILED", `The range ${input.anchor.start}–${input.anchor.end} is not within the text (${variant.text.length} characters)`, { errors: [{ in: "body", field: "anchor.end", message: `at most ${variant.text.length}, and not before start` }] });
    }
  }
  const row: CommentRow = {
    id: newId("pcm"),
    tenantId: c.var.tenant.id,
    postId,
    revision,
    parentId: input.parent_id ?? null,
    channel: input.anchor?.channel ?? null,
    anchorStart: input.anchor?.start ?? null,
    anchorEnd: input.anchor?.end ?? null,
    body: input.body,
    authorType: author.type,
    authorId: author.id,
    resolvedAt: null,
    resolvedBy: null,
    createdAt: new Date().toISOString(),
  };
  const db = c.var.db;
  const [inserted] = await db.batch([
    insertWithin(db, postComments, row, and(eq(postComments.tenantId, row.tenantId), eq(postComments.postId, postId)), MAX_COMMENTS_PER_POST).returning({ id: postComments.id }),
    eventAfterChange(db, { tenantId: row.tenantId, type: "comment.created", subjectType: "comment", subjectId: row.id, data: renderComment(row) }),
    auditChange(c, { action: "comment.created", resourceType: "post", resourceId: postId, details: { comment_id: row.id, revision, author_type: author.type } }),
  ]);
  if (!inserted[0]) throw new ApiError("PLAN_LIMIT", `A post holds at most ${MAX_COMMENTS_PER_POST} comments`);
  return row;
}

/** A post's comments, oldest first, optionally of one revision. */
export async function listComments(c: Context<AppEnv>, postId: string, revision?: number): Promise<CommentRow[]> {
  await findPost(c, postId);
  return c.var.db
    .select()
    .from(postComments)
    .where(and(eq(postComments.tenantId, c.var.tenant.id), eq(postComments.postId, postId), revision !== undefined ? eq(postComments.revision, revision) : undefined))
    .orderBy(asc(postComments.id))
    .limit(MAX_COMMENTS_PER_POST);
}

/** Resolves a thread (its first comment); resolving again changes nothing. */
export async function resolveThread(c: Context<AppEnv>, postId: string, id: string, by: Reviewer): Promise<CommentRow> {
  await assertReachable(c, posts, postId, "post");
  const db = c.var.db;
  const [updated] = await db.batch([
    db
      .update(postComments)
      .set({ resolvedAt: new Date().toISOString(), resolvedBy: by.id })
      .where(and(isComment(c, postId, id), isNull(postComments.parentId), isNull(postComments.resolvedAt)))
      .returning(),
    auditChange(c, { action: "comment.resolved", resourceType: "post", resourceId: postId, details: { comment_id: id } }),
  ]);
  if (updated[0]) return updated[0];
  const row = await db.select().from(postComments).where(isComment(c, postId, id)).get();
  if (!row) throw new ApiError("NOT_FOUND", `No comment ${id} on post ${postId}`);
  if (row.parentId) throw new ApiError("VALIDATION_FAILED", `Comment ${id} is a reply; resolve its thread ${row.parentId}`, { errors: [{ in: "path", field: "commentId", message: "is a reply" }] });
  return row;
}

/** A comment as the API and its event show it. */
export function renderComment(r: CommentRow) {
  return {
    id: r.id,
    post_id: r.postId,
    revision: r.revision,
    parent_id: r.parentId,
    anchor: r.channel === null ? null : { channel: r.channel, start: r.anchorStart!, end: r.anchorEnd! },
    body: r.body,
    author: { type: r.authorType, id: r.authorId },
    resolved_at: r.resolvedAt,
    resolved_by: r.resolvedBy,
    created_at: r.createdAt,
  };
}
