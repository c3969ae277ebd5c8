import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import * as comments from "../content/comments";
import * as reviews from "../content/reviews";
import type { AppEnv } from "../context";
import { CommentSchema, PostSchema, renderPost } from "./content-schemas";
import { errors, guarded, jsonBody, jsonResponse, NonBlank, router } from "./openapi";

const IdParam = z.object({ id: z.string().min(1).max(64) });
const Revision = z.number().int().min(1).openapi({ description: "The revision reviewed: the post's current one, or 409 STALE_REVISION" });

type ActionPermission = "posts:write" | "posts:review";

/** What every post action route shares: `POST /v1/posts/{id}/{path}`, its summary and its permission. */
const actionRoute = (path: string, summary: string, permission: ActionPermission) => ({
  method: "post" as const,
  path: `/v1/posts/{id}/${path}`,
  tags: ["Posts"],
  summary,
  ...guarded(permission),
});

/** A post action without a body. */
const action = (path: string, summary: string, permission: ActionPermission) =>
  createRoute({ ...actionRoute(path, summary, permission), request: { params: IdParam }, responses: { 200: jsonResponse(PostSchema, "The post"), ...errors(401, 403, 404, 409) } });

/** A post action with a JSON body. */
const actionWith = <B extends z.ZodType>(path: string, summary: string, permission: ActionPermission, body: B) =>
  createRoute({
    ...actionRoute(path, summary, permission),
    request: { params: IdParam, body: jsonBody(body) },
    responses: { 200: jsonResponse(PostSchema, "The post"), ...errors(400, 401, 403, 404, 409, 413, 415) },
  });

const submit = action("submit", "Submit a post for review under its project's policy (approved at once under none)", "posts:write");
const approve = actionWith(
  "approve",
  "Approve a revision (approving again is a no-op); the last approval its levels need makes the post approved",
  "posts:review",
  z.object({ revision: Revision, comment: z.string().max(5000).nullable().optional() }).openapi("ApprovePost"),
);
const requestChanges = actionWith(
  "request-changes",
  "Send a revision back to its author with a comment",
  "posts:review",
  z.object({ revision: Revision, comment: NonBlank(5000) }).openapi("RequestPostChanges"),
);
const schedule = actionWith(
  "schedule",
  "Schedule the approved revision (or, where approval is not required, the current one) for publication",
  "posts:write",
  z.object({ at: z.iso.datetime({ offset: true }).openapi({ description: "When to publish (in the future)" }) }).openapi("SchedulePost"),
);
const unschedule = action("unschedule", "Take a post off the schedule", "posts:write");

const ReviewSchema = z
  .object({
    id: z.string(),
    revision: z.number().int(),
    level: z.number().int().nullable().openapi({ description: "1-based level an approval counted at; null for a request for changes" }),
    decision: z.enum(["approved", "changes_requested"]),
    reviewer: z.object({ type: z.enum(["user", "guest"]), id: z.string() }),
    comment: z.string().nullable(),
    created_at: z.string(),
  })
  .openapi("PostReview");

const listReviews = createRoute({
  method: "get",
  path: "/v1/posts/{id}/reviews",
  tags: ["Posts"],
  summary: "A post's approvals and requests for changes, oldest first",
  ...guarded("posts:read"),
  request: { params: IdParam },
  responses: { 200: jsonResponse(z.object({ data: z.array(ReviewSchema) }), "The reviews"), ...errors(401, 403, 404) },
});

const addComment = createRoute({
  method: "post",
  path: "/v1/posts/{id}/comments",
  tags: ["Posts"],
  summary: "Comment on a revision (the current one unless named), optionally on a range of one channel's text, or reply to a thread",
  ...guarded("posts:review"),
  request: {
    params: IdParam,
    body: jsonBody(
      z
        .object({
          body: NonBlank(5000),
          revision: z.number().int().min(1).optional(),
          parent_id: z.string().min(1).max(64).nullable().optional(),
          anchor: z.object({ channel: z.string().min(1).max(32), start: z.number().int().min(0), end: z.number().int().min(0) }).nullable().optional(),
        })
        .openapi("CreatePostComment"),
    ),
  },
  responses: { 201: jsonResponse(CommentSchema, "The comment"), ...errors(400, 401, 403, 404, 413, 415) },
});

const listComments = createRoute({
  method: "get",
  path: "/v1/posts/{id}/comments",
  tags: ["Posts"],
  summary: "A post's comments, oldest first",
  ...guarded("posts:read"),
  request: { params: IdParam, query: z.object({ revision: z.coerce.number().int().min(1).max(1_000_000).optional() }) },
  responses: { 200: jsonResponse(z.object({ data: z.array(CommentSchema) }), "The comments"), ...errors(400, 401, 403, 404) },
});

const resolveThread = createRoute({
  method: "post",
  path: "/v1/posts/{id}/comments/{commentId}/resolve",
  tags: ["Posts"],
  summary: "Resolve a comment thread",
  ...guarded("posts:review"),
  request: { params: IdParam.extend({ commentId: z.string().min(1).max(64) }) },
  responses: { 200: jsonResponse(CommentSchema, "The thread's first comment"), ...errors(400, 401, 403, 404) },
});

const me = (c: Context<AppEnv>): reviews.Reviewer => ({ type: "user", id: c.var.principal.userId });

/** The review workflow of posts: submission, approvals tied to revisions, requests for changes, schedule, comments. */
export const postReviewRoutes = router()
  .openapi(submit, async (c) => c.json(renderPost(await reviews.submitPost(c, c.req.valid("param").id)), 200))
  .openapi(approve, async (c) => {
    const body = c.req.valid("json");
    return c.json(renderPost(await reviews.approvePost(c, c.req.valid("param").id, body.revision, me(c), body.comment ?? null)), 200);
  })
  .openapi(requestChanges, async (c) => {
    const body = c.req.valid("json");
    return c.json(renderPost(await reviews.requestChanges(c, c.req.valid("param").id, body.revision, me(c), body.comment)), 200);
  })
  .openapi(schedule, async (c) => c.json(renderPost(await reviews.schedulePost(c, c.req.valid("param").id, c.req.valid("json").at)), 200))
  .openapi(unschedule, async (c) => c.json(renderPost(await reviews.unschedulePost(c, c.req.valid("param").id)), 200))
  .openapi(listReviews, async (c) =>
    c.json(
      {
        data: (await reviews.listReviews(c, c.req.valid("param").id)).map((r) => ({
          id: r.id,
          revision: r.revision,
          level: r.level >= 0 ? r.level + 1 : null,
          decision: r.decision,
          reviewer: { type: r.reviewerType, id: r.reviewerId },
          comment: r.comment,
          created_at: r.createdAt,
        })),
      },
      200,
    ),
  )
  .openapi(addComment, async (c) => c.json(comments.renderComment(await comments.addComment(c, c.req.valid("param").id, c.req.valid("json"), me(c))), 201))
  .openapi(listComments, async (c) => c.json({ data: (await comments.listComments(c, c.req.valid("param").id, c.req.valid("query").revision)).map(comments.renderComment) }, 200))
  .openapi(resolveThread, async (c) => {
    const { id, commentId } = c.req.valid("param");
    return c.json(comments.renderComment(await comments.resolveThread(c, id, commentId, me(c))), 200);
  });
