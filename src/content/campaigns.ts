import { and, eq, inArray, sql } from "drizzle-orm";
import type { Context } from "hono";
import { withinReach } from "../auth/reach";
import type { AppEnv } from "../context";
import { auditChange } from "../db/audit";
import { insertWithin } from "../db/insert-where";
import { eventAfterChange, type EventType } from "../db/outbox";
import { findReachable, listReachable } from "../db/owned";
import { campaigns, posts } from "../db/tenant/schema";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { requireProject } from "../projects/store";

export type CampaignRow = typeof campaigns.$inferSelect;
export type CampaignStatus = CampaignRow["status"];

/** The most campaigns a project holds. */
export const MAX_CAMPAIGNS_PER_PROJECT = 1000;

/**
 * The status machine: each action, the statuses it may start from, and where it leads.
 * draft → active ⇄ paused → completed → archived (a draft or a paused campaign may be archived too).
 */
export const CAMPAIGN_ACTIONS = {
  activate: { from: ["draft", "paused"], to: "active", event: "campaign.activated" },
  pause: { from: ["active"], to: "paused", event: "campaign.paused" },
  complete: { from: ["active", "paused"], to: "completed", event: "campaign.completed" },
  archive: { from: ["draft", "paused", "completed"], to: "archived", event: "campaign.archived" },
} as const satisfies Record<string, { from: readonly CampaignStatus[]; to: CampaignStatus; event: EventType }>;
export type CampaignAction = keyof typeof CAMPAIGN_ACTIONS;

export interface CampaignFields {
  name?: string;
  goal?: string | null;
  channels?: string[];
  starts_on?: string | null;
  ends_on?: string | null;
  owner_id?: string;
  tags?: string[];
}

/** What a campaign's events carry. */
export const campaignData = (r: CampaignRow) => ({
  id: r.id,
  project_id: r.projectId,
  name: r.name,
  status: r.status,
  channels: JSON.parse(r.channels) as string[],
  starts_on: r.startsOn,
  ends_on: r.endsOn,
  owner_id: r.ownerId,
});

const isCampaign = (c: Context<AppEnv>, id: string) => and(eq(campaigns.tenantId, c.var.tenant.id), eq(campaigns.id, id), withinReach(c, campaigns.projectId));

export const findCampaign = (c: Context<AppEnv>, id: string) => findReachable(c, campaigns, id, "campaign");

export const listCampaigns = <U>(c: Context<AppEnv>, q: { limit: number; cursor?: string; project_id?: string; status?: CampaignStatus }, render: (row: CampaignRow) => U) =>
  listReachable(
    c,
    campaigns,
    { ...q, prefix: "cmp", filters: [q.project_id ? eq(campaigns.projectId, q.project_id) : undefined, q.status ? eq(campaigns.status, q.status) : undefined] },
    render,
  );

/** The dates in order: an end before the start is a 400 naming `ends_on`. */
function checkDates(startsOn: string | null, endsOn: string | null): void {
  if (startsOn && endsOn && endsOn < startsOn) {
    throw new ApiError("VALIDATION_FAILED", "A campaign cannot end before it starts", { errors: [{ in: "body", field: "ends_on", message: `before starts_on (${startsOn})` }] });
  }
}

const unique = (xs: string[]) => JSON.stringify([...new Set(xs)]);

export async function createCampaign(c: Context<AppEnv>, body: CampaignFields & { project_id: string; name: string }): Promise<CampaignRow> {
  const projectId = await requireProject(c, body.project_id);
  checkDates(body.starts_on ?? null, body.ends_on ?? null);
  const now = new Date().toISOString();
  const row: CampaignRow = {
    id: newId("cmp"),
    tenantId: c.var.tenant.id,
    projectId,
    name: body.name,
    goal: body.goal ?? null,
    channels: unique(body.channels ?? []),
    startsOn: body.starts_on ?? null,
    endsOn: body.ends_on ?? null,
    status: "draft",
    ownerId: body.owner_id ?? c.var.principal.userId,
    tags: unique(body.tags ?? []),
    createdBy: c.var.principal.userId,
    createdAt: now,
    updatedAt: now,
  };
  const db = c.var.db;
  const [inserted] = await db.batch([
    insertWithin(db, campaigns, row, and(eq(campaigns.tenantId, row.tenantId), eq(campaigns.projectId, projectId)), MAX_CAMPAIGNS_PER_PROJECT).returning({ id: campaigns.id }),
    eventAfterChange(db, { tenantId: row.tenantId, type: "campaign.created", subjectType: "campaign", subjectId: row.id, data: campaignData(row) }),
    auditChange(c, { action: "campaign.created", resourceType: "campaign", resourceId: row.id, details: { project_id: projectId, name: row.name } }),
  ]);
  if (!inserted[0]) throw new ApiError("PLAN_LIMIT", `A project holds at most ${MAX_CAMPAIGNS_PER_PROJECT} campaigns`);
  return row;
}

/** Changes a campaign's fields (not its status: that moves only by its actions). */
export async function updateCampaign(c: Context<AppEnv>, id: string, body: CampaignFields): Promise<CampaignRow> {
  const current = await findCampaign(c, id);
  checkDates(body.starts_on !== undefined ? body.starts_on : current.startsOn, body.ends_on !== undefined ? body.ends_on : current.endsOn);
  const db = c.var.db;
  const [rows] = await db.batch([
    db
      .update(campaigns)
      .set({
        ...(body.name !== undefined && { name: body.name }),
        ...(body.goal !== undefined && { goal: body.goal }),
        ...(body.channels !== undefined && { channels: unique(body.channels) }),
        ...(body.starts_on !== undefined && { startsOn: body.starts_on }),
        ...(body.ends_on !== undefined && { endsOn: body.ends_on }),
        ...(body.owner_id !== undefined && { ownerId: body.owner_id }),
        ...(body.tags !== undefined && { tags: unique(body.tags) }),
        updatedAt: new Date().toISOString(),
      })
      .where(isCampaign(c, id))
      .returning(),
    eventAfterChange(db, { tenantId: c.var.tenant.id, type: "campaign.updated", subjectType: "campaign", subjectId: id, data: { id, fields: Object.keys(body) } }),
    auditChange(c, { action: "campaign.updated", resourceType: "campaign", resourceId: id, details: { fields: Object.keys(body) } }),
  ]);
  if (!rows[0]) throw new ApiError("NOT_FOUND", `No campaign ${id}`);
  return rows[0];
}

/**
 * Moves a campaign by one action of its status machine. The allowed starting statuses are a
 * condition of the update itself, so two racing actions cannot both apply; a status the action
 * does not start from is a 409 naming it.
 */
export async function transitionCampaign(c: Context<AppEnv>, id: string, action: CampaignAction): Promise<CampaignRow> {
  const { from, to, event } = CAMPAIGN_ACTIONS[action];
  const db = c.var.db;
  const [rows] = await db.batch([
    db
      .update(campaigns)
      .set({ status: to, updatedAt: new Date().toISOString() })
      .where(and(isCampaign(c, id), inArray(campaigns.status, [...from])))
      .returning(),
    eventAfterChange(db, { tenantId: c.var.tenant.id, type: event, subjectType: "campaign", subjectId: id, data: { id, status: to, from } }),
    auditChange(c, { action: `campaign.${action}`, resourceType: "campaign", resourceId: id, details: { to } }),
  ]);
  if (rows[0]) return rows[0];
  const current = await findCampaign(c, id);
  throw new ApiError("INVALID_STATE", `Campaign ${id} is ${current.status}; ${action} applies to a campaign that is ${from.join(" or ")}`, {
    errors: [{ in: "path", field: "status", message: `is ${current.status}` }],
  });
}

/** Deletes a campaign; its posts stay in the project, no longer in a campaign. */
export async function deleteCampaign(c: Context<AppEnv>, id: string): Promise<void> {
  const found = await findCampaign(c, id);
  const db = c.var.db;
  const [deleted] = await db.batch([
    db.delete(campaigns).where(isCampaign(c, id)).returning({ id: campaigns.id }),
    eventAfterChange(db, { tenantId: c.var.tenant.id, type: "campaign.deleted", subjectType: "campaign", subjectId: id, data: campaignData(found) }),
    auditChange(c, { action: "campaign.deleted", resourceType: "campaign", resourceId: id }),
    db.update(posts).set({ campaignId: null }).where(and(eq(posts.tenantId, c.var.tenant.id), eq(posts.campaignId, id), sql`NOT EXISTS (SELECT 1 FROM ${campaigns} WHERE ${campaigns.id} = ${id})`)),
  ]);
  if (!deleted[0]) throw new ApiError("NOT_FOUND", `No campaign ${id}`);
}
