// Schemas the content routes share (posts, their revisions and comments): posts.ts, post-reviews.ts
// and review-links.ts answer the same shapes. Like openapi.ts, a module of shapes, not of routes.
import { z } from "@hono/zod-openapi";
import { type PostRow, postData, type RevisionRow, type Variant } from "../content/posts";

/** A post's status machine (content operations). */
export const PostStatus = z.enum(["draft", "in_review", "changes_requested", "approved", "scheduled", "publishing", "published", "failed", "archived"]);

/** A post as the API shows it (its content is in its revisions). */
export const PostSchema = z
  .object({
    id: z.string(),
    project_id: z.string(),
    campaign_id: z.string().nullable(),
    title: z.string(),
    status: PostStatus,
    revision: z.number().int().openapi({ description: "The current revision" }),
    approved_revision: z.number().int().nullable().openapi({ description: "The revision that passed review, while it is still the one to publish" }),
    review_levels: z.array(z.object({ name: z.string(), reviewers: z.array(z.string()).nullable(), required: z.number().int() })).nullable(),
    scheduled_at: z.string().nullable(),
    scheduled_revision: z.number().int().nullable(),
    published_at: z.string().nullable(),
    publish_error: z.string().nullable().openapi({ description: "Why publishing failed (status failed)" }),
    created_by: z.string(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("Post");

/** A post as the API shows it: what its events carry, and its review, schedule and publication. */
export const renderPost = (p: PostRow): z.infer<typeof PostSchema> => ({
  ...postData(p),
  review_levels: p.reviewLevels ? (JSON.parse(p.reviewLevels) as { name: string; reviewers: string[] | null; required: number }[]).map((l) => ({ name: l.name, reviewers: l.reviewers, required: l.required })) : null,
  scheduled_revision: p.scheduledRevision,
  published_at: p.publishedAt,
  publish_error: p.publishError,
  created_by: p.createdBy,
  created_at: p.createdAt,
  updated_at: p.updatedAt,
});

/** A post's content for one channel. */
export const PostVariant = z
  .object({
    channel: z.string().regex(/^[a-z][a-z0-9_]{0,31}$/, "a channel name such as linkedin or instagram"),
    text: z.string().max(10_000).default(""),
    media: z
      .array(z.object({ artifact_id: z.string().min(1).max(64), version: z.number().int().min(1) }))
      .max(10)
      .default([])
      .openapi({ description: "Artifact versions (images, video) shown with the text" }),
    link: z.url({ protocol: /^https?$/ }).max(2000).nullable().default(null),
  })
  .openapi("PostVariant");
/** One immutable revision of a post. */
export const RevisionSchema = z
  .object({ post_id: z.string(), revision: z.number().int(), title: z.string(), variants: z.array(PostVariant), content_hash: z.string(), author_id: z.string(), created_at: z.string() })
  .openapi("PostRevision");

export const renderRevision = (r: RevisionRow): z.infer<typeof RevisionSchema> => ({
  post_id: r.postId,
  revision: r.revision,
  title: r.title,
  variants: JSON.parse(r.variants) as Variant[],
  content_hash: r.contentHash,
  author_id: r.authorId,
  created_at: r.createdAt,
});

/** A comment on a revision of a post. */
export const CommentSchema = z
  .object({
    id: z.string(),
    post_id: z.string(),
    revision: z.number().int(),
    parent_id: z.string().nullable(),
    anchor: z.object({ channel: z.string(), start: z.number().int(), end: z.number().int() }).nullable(),
    body: z.string(),
    author: z.object({ type: z.enum(["user", "guest"]), id: z.string() }),
    resolved_at: z.string().nullable(),
    resolved_by: z.string().nullable(),
    created_at: z.string(),
  })
  .openapi("PostComment");


/** A post with its current revision: what creating, getting and editing one answer. */
export const PostWithRevision = PostSchema.extend({ current: RevisionSchema }).openapi("PostWithRevision");
