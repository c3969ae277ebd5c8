import { createRoute, z } from "@hono/zod-openapi";
import * as posts from "../content/posts";
import { PageQuery } from "../lib/pagination";
import { PostSchema, PostStatus, PostVariant, PostWithRevision, RevisionSchema, renderPost, renderRevision } from "./content-schemas";
import { errors, guarded, jsonBody, jsonResponse, NonBlank, pageOf, router } from "./openapi";

const Variants = z.array(PostVariant).min(1).max(10).openapi({ description: "One variant per channel" });


const IdParam = z.object({ id: z.string().min(1).max(64) });

const createPost = createRoute({
  method: "post",
  path: "/v1/posts",
  tags: ["Posts"],
  summary: "Create a post (draft, revision 1) in a campaign or a project",
  ...guarded("posts:write"),
  request: {
    body: jsonBody(
      z
        .object({ project_id: z.string().min(1).max(64).optional(), campaign_id: z.string().min(1).max(64).nullable().optional(), title: NonBlank(300), variants: Variants })
        .openapi("CreatePost", { description: "project_id, or campaign_id (the post goes to the campaign's project)" }),
    ),
  },
  responses: { 201: jsonResponse(PostWithRevision, "The post with its first revision"), ...errors(400, 401, 403, 404, 409, 413, 415) },
});

const listPosts = createRoute({
  method: "get",
  path: "/v1/posts",
  tags: ["Posts"],
  summary: "List posts, newest first",
  ...guarded("posts:read"),
  request: { query: PageQuery.extend({ project_id: z.string().max(64).optional(), campaign_id: z.string().max(64).optional(), status: PostStatus.optional() }) },
  responses: { 200: jsonResponse(pageOf(PostSchema), "A page of posts"), ...errors(400, 401, 403) },
});

const getPost = createRoute({
  method: "get",
  path: "/v1/posts/{id}",
  tags: ["Posts"],
  summary: "Get a post with its current revision",
  ...guarded("posts:read"),
  request: { params: IdParam },
  responses: { 200: jsonResponse(PostWithRevision, "The post"), ...errors(401, 403, 404) },
});

const editPost = createRoute({
  method: "patch",
  path: "/v1/posts/{id}",
  tags: ["Posts"],
  summary: "Edit a post: a new revision (an approved or scheduled post goes back to review)",
  ...guarded("posts:write"),
  request: {
    params: IdParam,
    body: jsonBody(
      z
        .object({ title: NonBlank(300).optional(), variants: Variants.optional(), base_revision: z.number().int().min(1).optional().openapi({ description: "The revision this edit was made on: a newer current one is a 409" }) })
        .refine((b) => b.title !== undefined || b.variants !== undefined, "give title or variants")
        .openapi("EditPost", { anyOf: [{ required: ["title"] }, { required: ["variants"] }] }),
    ),
  },
  responses: { 200: jsonResponse(PostWithRevision, "The post with its new revision"), ...errors(400, 401, 403, 404, 409, 413, 415) },
});

const archivePost = createRoute({
  method: "post",
  path: "/v1/posts/{id}/archive",
  tags: ["Posts"],
  summary: "Archive a post (not while it is being published)",
  ...guarded("posts:write"),
  request: { params: IdParam },
  responses: { 200: jsonResponse(PostSchema, "The post"), ...errors(401, 403, 404, 409) },
});

const listRevisions = createRoute({
  method: "get",
  path: "/v1/posts/{id}/revisions",
  tags: ["Posts"],
  summary: "Every revision of a post, oldest first",
  ...guarded("posts:read"),
  request: { params: IdParam },
  responses: { 200: jsonResponse(z.object({ data: z.array(RevisionSchema) }), "The revisions"), ...errors(401, 403, 404) },
});

const getRevision = createRoute({
  method: "get",
  path: "/v1/posts/{id}/revisions/{revision}",
  tags: ["Posts"],
  summary: "One revision of a post",
  ...guarded("posts:read"),
  request: { params: IdParam.extend({ revision: z.coerce.number().int().min(1).max(1_000_000) }) },
  responses: { 200: jsonResponse(RevisionSchema, "The revision"), ...errors(400, 401, 403, 404) },
});

/** Posts and their immutable revisions. */
export const postRoutes = router()
  .openapi(createPost, async (c) => {
    const { post, revision } = await posts.createPost(c, c.req.valid("json"));
    return c.json({ ...renderPost(post), current: renderRevision(revision) }, 201);
  })
  .openapi(listPosts, async (c) => c.json(await posts.listPosts(c, c.req.valid("query"), renderPost), 200))
  .openapi(getPost, async (c) => {
    const { post, revision } = await posts.findPostWithRevision(c, c.req.valid("param").id);
    return c.json({ ...renderPost(post), current: renderRevision(revision) }, 200);
  })
  .openapi(editPost, async (c) => {
    const { post, revision } = await posts.editPost(c, c.req.valid("param").id, c.req.valid("json"));
    return c.json({ ...renderPost(post), current: renderRevision(revision) }, 200);
  })
  .openapi(archivePost, async (c) => c.json(renderPost(await posts.archivePost(c, c.req.valid("param").id)), 200))
  .openapi(listRevisions, async (c) => c.json({ data: (await posts.listRevisions(c, c.req.valid("param").id)).map(renderRevision) }, 200))
  .openapi(getRevision, async (c) => {
    const { id, revision } = c.req.valid("param");
    return c.json(renderRevision(await posts.findRevision(c, id, revision)), 200);
  });
