import { createRoute, z } from "@hono/zod-openapi";
import * as channels from "../content/channels";
import * as publishing from "../content/publishing";
import { errors, guarded, jsonBody, jsonResponse, NonBlank, router } from "./openapi";

const ChannelAccountSchema = z
  .object({ id: z.string(), project_id: z.string(), channel: z.string(), name: z.string(), created_by: z.string(), created_at: z.string() })
  .openapi("ChannelAccount", { description: "A connected social account; its credentials are stored encrypted and never answered" });

const ProjectParam = z.object({ id: z.string().min(1).max(64) });

const connect = createRoute({
  method: "post",
  path: "/v1/projects/{id}/channels",
  tags: ["Campaigns"],
  summary: "Connect a social account to a project for one channel (credentials encrypted at rest, never answered)",
  ...guarded("projects:write"),
  request: {
    params: ProjectParam,
    body: jsonBody(
      z
        .object({
          channel: z.string().regex(/^[a-z][a-z0-9_]{0,31}$/, "a channel name such as linkedin or instagram"),
          name: NonBlank(200),
          credentials: z
            .record(z.string().max(100), z.union([z.string().max(4096), z.number(), z.boolean()]))
            .refine((r) => Object.keys(r).length <= 20, "at most 20 fields")
            .openapi({ description: "What the network's API needs (tokens, account ids); the local sandbox needs none", maxProperties: 20 }),
        })
        .openapi("ConnectChannel"),
    ),
  },
  responses: { 201: jsonResponse(ChannelAccountSchema, "The account"), ...errors(400, 401, 403, 404, 409, 413, 415) },
});

const list = createRoute({
  method: "get",
  path: "/v1/projects/{id}/channels",
  tags: ["Campaigns"],
  summary: "A project's connected channel accounts",
  ...guarded("posts:read"),
  request: { params: ProjectParam },
  responses: { 200: jsonResponse(z.object({ data: z.array(ChannelAccountSchema) }), "The accounts"), ...errors(401, 403, 404) },
});

const disconnect = createRoute({
  method: "delete",
  path: "/v1/projects/{id}/channels/{accountId}",
  tags: ["Campaigns"],
  summary: "Disconnect a channel account (posts scheduled for its channel fail at their minute, saying so)",
  ...guarded("projects:write"),
  request: { params: ProjectParam.extend({ accountId: z.string().min(1).max(64) }) },
  responses: { 204: { description: "Disconnected" }, ...errors(401, 403, 404) },
});

const PublicationSchema = z.object({ revision: z.number().int(), channel: z.string(), external_id: z.string(), url: z.string(), published_at: z.string() }).openapi("PostPublication");
const publications = createRoute({
  method: "get",
  path: "/v1/posts/{id}/publications",
  tags: ["Posts"],
  summary: "Where a post was published: each channel's post id and URL",
  ...guarded("posts:read"),
  request: { params: z.object({ id: z.string().min(1).max(64) }) },
  responses: { 200: jsonResponse(z.object({ data: z.array(PublicationSchema) }), "The publications"), ...errors(401, 403, 404) },
});

const render = (a: channels.ChannelAccountRow): z.infer<typeof ChannelAccountSchema> => ({ id: a.id, project_id: a.projectId, channel: a.channel, name: a.name, created_by: a.createdBy, created_at: a.createdAt });

/** Channel accounts of projects, and where posts were published. */
export const channelRoutes = router()
  .openapi(connect, async (c) => c.json(render(await channels.connectChannel(c, c.req.valid("param").id, c.req.valid("json"))), 201))
  .openapi(list, async (c) => c.json({ data: (await channels.listChannels(c, c.req.valid("param").id)).map(render) }, 200))
  .openapi(disconnect, async (c) => {
    const { id, accountId } = c.req.valid("param");
    await channels.disconnectChannel(c, id, accountId);
    return c.body(null, 204);
  })
  .openapi(publications, async (c) => {
    const rows = await publishing.listPublications(c, c.req.valid("param").id);
    return c.json({ data: rows.map((p) => ({ revision: p.revision, channel: p.channel, external_id: p.externalId, url: p.url, published_at: p.publishedAt })) }, 200);
  });
