import { createRoute, z } from "@hono/zod-openapi";
import * as campaigns from "../content/campaigns";
import * as reviews from "../content/reviews";
import { campaignAnalytics } from "../content/analytics";
import { PageQuery } from "../lib/pagination";
import { atLeastOneOf, errors, guarded, jsonBody, jsonResponse, NonBlank, pageOf, router } from "./openapi";

const Day = z.iso.date().openapi({ description: "A calendar date, YYYY-MM-DD" });
const Channel = z.string().regex(/^[a-z][a-z0-9_]{0,31}$/, "a channel name such as linkedin or instagram");
const Tag = NonBlank(50);
const CampaignStatus = z.enum(["draft", "active", "paused", "completed", "archived"]);

const CampaignFields = {
  name: NonBlank(200),
  goal: z.string().max(2000).nullable(),
  channels: z.array(Channel).max(20),
  starts_on: Day.nullable(),
  ends_on: Day.nullable(),
  owner_id: z.string().min(1).max(64),
  tags: z.array(Tag).max(20),
};

const CampaignSchema = z
  .object({
    id: z.string(),
    project_id: z.string(),
    name: z.string(),
    goal: z.string().nullable(),
    channels: z.array(z.string()),
    starts_on: z.string().nullable(),
    ends_on: z.string().nullable(),
    status: CampaignStatus,
    owner_id: z.string(),
    tags: z.array(z.string()),
    created_by: z.string(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("Campaign");

const IdParam = z.object({ id: z.string().min(1).max(64) });

const createCampaign = createRoute({
  method: "post",
  path: "/v1/campaigns",
  tags: ["Campaigns"],
  summary: "Create a campaign in a project (status draft)",
  ...guarded("campaigns:write"),
  request: {
    body: jsonBody(
      z
        .object({
          project_id: z.string().min(1).max(64),
          name: CampaignFields.name,
          goal: CampaignFields.goal.optional(),
          channels: CampaignFields.channels.optional(),
          starts_on: CampaignFields.starts_on.optional(),
          ends_on: CampaignFields.ends_on.optional(),
          owner_id: CampaignFields.owner_id.optional(),
          tags: CampaignFields.tags.optional(),
        })
        .openapi("CreateCampaign"),
    ),
  },
  responses: { 201: jsonResponse(CampaignSchema, "The campaign"), ...errors(400, 401, 403, 404, 413, 415) },
});

const listCampaigns = createRoute({
  method: "get",
  path: "/v1/campaigns",
  tags: ["Campaigns"],
  summary: "List campaigns, newest first",
  ...guarded("campaigns:read"),
  request: { query: PageQuery.extend({ project_id: z.string().max(64).optional(), status: CampaignStatus.optional() }) },
  responses: { 200: jsonResponse(pageOf(CampaignSchema), "A page of campaigns"), ...errors(400, 401, 403) },
});

const getCampaign = createRoute({
  method: "get",
  path: "/v1/campaigns/{id}",
  tags: ["Campaigns"],
  summary: "Get a campaign",
  ...guarded("campaigns:read"),
  request: { params: IdParam },
  responses: { 200: jsonResponse(CampaignSchema, "The campaign"), ...errors(401, 403, 404) },
});

const UpdateFields = { name: CampaignFields.name, goal: CampaignFields.goal, channels: CampaignFields.channels, starts_on: CampaignFields.starts_on, ends_on: CampaignFields.ends_on, owner_id: CampaignFields.owner_id, tags: CampaignFields.tags };
const updateCampaign = createRoute({
  method: "patch",
  path: "/v1/campaigns/{id}",
  tags: ["Campaigns"],
  summary: "Change a campaign's fields (its status moves by its actions)",
  ...guarded("campaigns:write"),
  request: {
    params: IdParam,
    body: jsonBody(
      z
        .object(Object.fromEntries(Object.entries(UpdateFields).map(([k, v]) => [k, v.optional()])) as { [K in keyof typeof UpdateFields]: z.ZodOptional<(typeof UpdateFields)[K]> })
        .refine((b) => Object.keys(b).length > 0, "give at least one field")
        .openapi("UpdateCampaign", atLeastOneOf(UpdateFields)),
    ),
  },
  responses: { 200: jsonResponse(CampaignSchema, "The campaign"), ...errors(400, 401, 403, 404, 413, 415) },
});

const deleteCampaign = createRoute({
  method: "delete",
  path: "/v1/campaigns/{id}",
  tags: ["Campaigns"],
  summary: "Delete a campaign (its posts stay in the project)",
  ...guarded("campaigns:write"),
  request: { params: IdParam },
  responses: { 204: { description: "Deleted" }, ...errors(401, 403, 404) },
});

const transition = (action: campaigns.CampaignAction) =>
  createRoute({
    method: "post",
    path: `/v1/campaigns/{id}/${action}`,
    tags: ["Campaigns"],
    summary: `${action[0]!.toUpperCase()}${action.slice(1)} a campaign (from ${campaigns.CAMPAIGN_ACTIONS[action].from.join(" or ")}; otherwise 409 naming its status)`,
    ...guarded("campaigns:write"),
    request: { params: IdParam },
    responses: { 200: jsonResponse(CampaignSchema, "The campaign"), ...errors(401, 403, 404, 409) },
  });

const ReviewLevel = z
  .object({
    name: NonBlank(100),
    reviewers: z.array(z.string().min(1).max(64)).min(1).max(50).nullable().default(null).openapi({ description: "User ids who may approve at this level; null: anyone who may review posts" }),
    required: z.number().int().min(1).max(50).default(1),
    remind_after_hours: z.number().int().min(1).max(720).nullable().default(null),
  })
  .openapi("ReviewLevel");
const PolicySchema = z
  .object({ project_id: z.string(), mode: z.enum(["none", "optional", "required", "multi_level"]), levels: z.array(ReviewLevel), updated_at: z.string().nullable() })
  .openapi("ApprovalPolicy");

const getPolicy = createRoute({
  method: "get",
  path: "/v1/projects/{id}/approval-policy",
  tags: ["Campaigns"],
  summary: "A project's approval policy for posts",
  ...guarded("posts:read"),
  request: { params: IdParam },
  responses: { 200: jsonResponse(PolicySchema, "The policy"), ...errors(401, 403, 404) },
});

const putPolicy = createRoute({
  method: "put",
  path: "/v1/projects/{id}/approval-policy",
  tags: ["Campaigns"],
  summary: "Set a project's approval policy (applies to posts submitted from now on)",
  ...guarded("projects:write"),
  request: { params: IdParam, body: jsonBody(z.object({ mode: PolicySchema.shape.mode, levels: z.array(ReviewLevel).min(1).max(5).optional() }).openapi("SetApprovalPolicy")) },
  responses: { 200: jsonResponse(PolicySchema, "The policy"), ...errors(400, 401, 403, 404, 413, 415) },
});

const Counts = {
  impressions: z.number().int(),
  clicks: z.number().int(),
  reactions: z.number().int(),
  shares: z.number().int(),
  conversions: z.number().int().nullable().openapi({ description: "When the network reports them" }),
};
const AnalyticsSchema = z
  .object({
    campaign_id: z.string(),
    from: z.string(),
    to: z.string(),
    granularity: z.enum(["hour", "day"]),
    totals: z.object(Counts),
    by_channel: z.array(z.object({ channel: z.string(), ...Counts })),
    by_post: z.array(z.object({ post_id: z.string(), title: z.string(), ...Counts })),
    series: z.array(z.object({ bucket: z.string(), ...Counts })).openapi({ description: "The counts reached by the end of each hour or day" }),
    funnel: z.object({ impressions: z.number().int(), clicks: z.number().int(), conversions: z.number().int().nullable(), click_rate: z.number().nullable() }),
  })
  .openapi("CampaignAnalytics");

const analytics = createRoute({
  method: "get",
  path: "/v1/campaigns/{id}/analytics",
  tags: ["Campaigns"],
  summary: "How a campaign's published posts performed: totals, per channel, per post, a series and the funnel",
  ...guarded("campaigns:read"),
  request: {
    params: IdParam,
    query: z.object({
      from: z.iso.datetime({ offset: true }).optional().openapi({ description: "Default: the campaign's start, or 30 days ago" }),
      to: z.iso.datetime({ offset: true }).optional().openapi({ description: "Default: now" }),
      granularity: z.enum(["hour", "day"]).default("day"),
    }),
  },
  responses: { 200: jsonResponse(AnalyticsSchema, "The campaign's performance"), ...errors(400, 401, 403, 404) },
});

const render = (r: campaigns.CampaignRow): z.infer<typeof CampaignSchema> => ({
  id: r.id,
  project_id: r.projectId,
  name: r.name,
  goal: r.goal,
  channels: JSON.parse(r.channels) as string[],
  starts_on: r.startsOn,
  ends_on: r.endsOn,
  status: r.status,
  owner_id: r.ownerId,
  tags: JSON.parse(r.tags) as string[],
  created_by: r.createdBy,
  created_at: r.createdAt,
  updated_at: r.updatedAt,
});

/** Campaigns, and each project's approval policy for their posts. */
export const campaignRoutes = router()
  .openapi(createCampaign, async (c) => c.json(render(await campaigns.createCampaign(c, c.req.valid("json"))), 201))
  .openapi(listCampaigns, async (c) => c.json(await campaigns.listCampaigns(c, c.req.valid("query"), render), 200))
  .openapi(getCampaign, async (c) => c.json(render(await campaigns.findCampaign(c, c.req.valid("param").id)), 200))
  .openapi(updateCampaign, async (c) => c.json(render(await campaigns.updateCampaign(c, c.req.valid("param").id, c.req.valid("json"))), 200))
  .openapi(deleteCampaign, async (c) => {
    await campaigns.deleteCampaign(c, c.req.valid("param").id);
    return c.body(null, 204);
  })
  .openapi(transition("activate"), async (c) => c.json(render(await campaigns.transitionCampaign(c, c.req.valid("param").id, "activate")), 200))
  .openapi(transition("pause"), async (c) => c.json(render(await campaigns.transitionCampaign(c, c.req.valid("param").id, "pause")), 200))
  .openapi(transition("complete"), async (c) => c.json(render(await campaigns.transitionCampaign(c, c.req.valid("param").id, "complete")), 200))
  .openapi(transition("archive"), async (c) => c.json(render(await campaigns.transitionCampaign(c, c.req.valid("param").id, "archive")), 200))
  .openapi(analytics, async (c) => c.json(await campaignAnalytics(c, c.req.valid("param").id, c.req.valid("query")), 200))
  .openapi(getPolicy, async (c) => c.json(await reviews.getPolicy(c, c.req.valid("param").id), 200))
  .openapi(putPolicy, async (c) => c.json(await reviews.setPolicy(c, c.req.valid("param").id, c.req.valid("json")), 200));
