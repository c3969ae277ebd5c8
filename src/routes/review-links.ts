import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import * as comments from "../content/comments";
import * as posts from "../content/posts";
import * as links from "../content/review-links";
import * as reviews from "../content/reviews";
import type { AppEnv } from "../context";
import { publicRoute } from "../middleware/auth";
import { CommentSchema, PostStatus, RevisionSchema, renderRevision } from "./content-schemas";
import { errors, guarded, jsonBody, jsonResponse, NonBlank, PersonName, router } from "./openapi";

const LinkSchema = z
  .object({ id: z.string(), post_id: z.string(), name: z.string(), expires_at: z.string(), revoked_at: z.string().nullable(), created_by: z.string(), created_at: z.string() })
  .openapi("ReviewLink");
const NewLinkSchema = LinkSchema.extend({ token: z.string().openapi({ description: "The link's secret, shown only in this answer: the guest opens /v1/review/{token}" }) }).openapi("NewReviewLink");

const PostParam = z.object({ id: z.string().min(1).max(64) });
const TokenParam = z.object({ token: z.string().min(1).max(128) });

const createLink = createRoute({
  method: "post",
  path: "/v1/posts/{id}/review-links",
  tags: ["Posts"],
  summary: "Make a review link for one person without an account (valid 7 days unless said otherwise)",
  ...guarded("posts:write"),
  request: { params: PostParam, body: jsonBody(z.object({ name: PersonName, expires_in_days: z.number().int().min(1).max(30).optional() }).openapi("CreateReviewLink")) },
  responses: { 201: jsonResponse(NewLinkSchema, "The link, with its token"), ...errors(400, 401, 403, 404, 413, 415) },
});

const listLinks = createRoute({
  method: "get",
  path: "/v1/posts/{id}/review-links",
  tags: ["Posts"],
  summary: "A post's review links, newest first",
  ...guarded("posts:read"),
  request: { params: PostParam },
  responses: { 200: jsonResponse(z.object({ data: z.array(LinkSchema) }), "The links"), ...errors(401, 403, 404) },
});

const revokeLink = createRoute({
  method: "delete",
  path: "/v1/posts/{id}/review-links/{linkId}",
  tags: ["Posts"],
  summary: "Revoke a review link at once",
  ...guarded("posts:write"),
  request: { params: PostParam.extend({ linkId: z.string().min(1).max(64) }) },
  responses: { 204: { description: "Revoked" }, ...errors(401, 403, 404) },
});

const GuestView = z
  .object({
    reviewer: z.object({ name: z.string(), expires_at: z.string() }),
    post: z.object({ id: z.string(), title: z.string(), status: PostStatus, revision: z.number().int() }),
    revision: RevisionSchema,
    comments: z.array(CommentSchema),
  })
  .openapi("GuestReview");
const GuestPost = z.object({ id: z.string(), title: z.string(), status: PostStatus, revision: z.number().int(), approved_revision: z.number().int().nullable() }).openapi("GuestPost");

/** A guest route: no account; the link's token in the path is the credential. */
const guestRoute = { tags: ["Guest review"], middleware: [publicRoute(), links.guestLink()] };

const view = createRoute({
  method: "get",
  path: "/v1/review/{token}",
  summary: "What a review link shows: the post's current revision and its comments",
  ...guestRoute,
  request: { params: TokenParam },
  responses: { 200: jsonResponse(GuestView, "The post under review"), ...errors(404, 410, 429) },
});

const guestApprove = createRoute({
  method: "post",
  path: "/v1/review/{token}/approve",
  summary: "Approve the current revision as the link's guest (counts at a level open to anyone who may review)",
  ...guestRoute,
  request: { params: TokenParam, body: jsonBody(z.object({ revision: z.number().int().min(1), comment: z.string().max(5000).nullable().optional() }).openapi("GuestApprove")) },
  responses: { 200: jsonResponse(GuestPost, "The post"), ...errors(400, 403, 404, 409, 410, 413, 415, 429) },
});

const guestRequestChanges = createRoute({
  method: "post",
  path: "/v1/review/{token}/request-changes",
  summary: "Send the current revision back with a comment",
  ...guestRoute,
  request: { params: TokenParam, body: jsonBody(z.object({ revision: z.number().int().min(1), comment: NonBlank(5000) }).openapi("GuestRequestChanges")) },
  responses: { 200: jsonResponse(GuestPost, "The post"), ...errors(400, 404, 409, 410, 413, 415, 429) },
});

const guestComment = createRoute({
  method: "post",
  path: "/v1/review/{token}/comments",
  summary: "Comment on the post's current revision, or reply to a thread",
  ...guestRoute,
  request: {
    params: TokenParam,
    body: jsonBody(
      z
        .object({ body: NonBlank(5000), parent_id: z.string().min(1).max(64).nullable().optional(), anchor: z.object({ channel: z.string().min(1).max(32), start: z.number().int().min(0), end: z.number().int().min(0) }).nullable().optional() })
        .openapi("GuestComment"),
    ),
  },
  responses: { 201: jsonResponse(CommentSchema, "The comment"), ...errors(400, 404, 410, 413, 415, 429) },
});

const renderLink = (l: links.ReviewLinkRow): z.infer<typeof LinkSchema> => ({ id: l.id, post_id: l.postId, name: l.name, expires_at: l.expiresAt, revoked_at: l.revokedAt, created_by: l.createdBy, created_at: l.createdAt });
const guestPost = (p: posts.PostRow) => ({ id: p.id, title: p.title, status: p.status, revision: p.revision, approved_revision: p.approvedRevision });
const asGuest = (c: Context<AppEnv>): reviews.Reviewer => ({ type: "guest", id: c.var.principal.userId });

/** Review links, and what a guest holding one may do: view, comment, approve or ask for changes on that one post. */
export const reviewLinkRoutes = router()
  .openapi(createLink, async (c) => {
    const link = await links.createLink(c, c.req.valid("param").id, c.req.valid("json"));
    return c.json({ ...renderLink(link), token: link.token }, 201);
  })
  .openapi(listLinks, async (c) => c.json({ data: (await links.listLinks(c, c.req.valid("param").id)).map(renderLink) }, 200))
  .openapi(revokeLink, async (c) => {
    const { id, linkId } = c.req.valid("param");
    await links.revokeLink(c, id, linkId);
    return c.body(null, 204);
  })
  .openapi(view, async (c) => {
    const { post, revision } = await posts.findPostWithRevision(c, links.guestPostId(c));
    const principal = c.var.principal as { name: string; expiresAt: number };
    return c.json(
      {
        reviewer: { name: principal.name, expires_at: new Date(principal.expiresAt).toISOString() },
        post: { id: post.id, title: post.title, status: post.status, revision: post.revision },
        revision: renderRevision(revision),
        comments: (await comments.listComments(c, post.id, post.revision)).map(comments.renderComment),
      },
      200,
    );
  })
  .openapi(guestApprove, async (c) => {
    const body = c.req.valid("json");
    return c.json(guestPost(await reviews.approvePost(c, links.guestPostId(c), body.revision, asGuest(c), body.comment ?? null)), 200);
  })
  .openapi(guestRequestChanges, async (c) => {
    const body = c.req.valid("json");
    return c.json(guestPost(await reviews.requestChanges(c, links.guestPostId(c), body.revision, asGuest(c), body.comment)), 200);
  })
  .openapi(guestComment, async (c) => {
    const body = c.req.valid("json");
    // A guest comments on the current revision: the one their link shows.
    return c.json(comments.renderComment(await comments.addComment(c, links.guestPostId(c), { body: body.body, parent_id: body.parent_id, anchor: body.anchor }, asGuest(c))), 201);
  });
