import { and, asc, eq } from "drizzle-orm";
import { reaches } from "../auth/reach";
import type { Context } from "hono";
import type { AppEnv } from "../context";
import { auditChange } from "../db/audit";
import { isUniqueViolation } from "../db/constraints";
import { insertWithin } from "../db/insert-where";
import type { TenantDb } from "../db/router";
import { channelAccounts } from "../db/tenant/schema";
import { seal, unseal } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { requireProject } from "../projects/store";
import type { Account } from "../providers/publishers";

export type ChannelAccountRow = typeof channelAccounts.$inferSelect;

/** The most channel accounts a project connects. */
export const MAX_CHANNELS_PER_PROJECT = 20;

/** What the credentials of account `id` are bound to: a ciphertext copied to another row does not open. */
const context = (tenantId: string, id: string) => `channel_account:${tenantId}:${id}`;

/**
 * Connects a social account to a project for one channel (one per channel). Its credentials are
 * encrypted with the Worker's SECRETS_KEY before they are stored, and never answered,
 * logged or audited.
 */
export async function connectChannel(c: Context<AppEnv>, projectId: string, body: { channel: string; name: string; credentials: Record<string, unknown> }): Promise<ChannelAccountRow> {
  await requireProject(c, projectId, "query");
  const id = newId("chn");
  const tenantId = c.var.tenant.id;
  const row: ChannelAccountRow = {
    id,
    tenantId,
    projectId,
    channel: body.channel,
    name: body.name,
    credentials: await seal(c.var.config.SECRETS_KEY, JSON.stringify(body.credentials), context(tenantId, id)),
    createdBy: c.var.principal.userId,
    createdAt: new Date().toISOString(),
  };
  const db = c.var.db;
  try {
    const [inserted] = await db.batch([
      insertWithin(db, channelAccounts, row, and(eq(channelAccounts.tenantId, tenantId), eq(channelAccounts.projectId, projectId)), MAX_CHANNELS_PER_PROJECT).returning({ id: channelAccounts.id }),
      auditChange(c, { action: "channel.connected", resourceType: "project", resourceId: projectId, details: { account_id: id, channel: body.channel, name: body.name } }),
    ]);
    if (!inserted[0]) throw new ApiError("PLAN_LIMIT", `A project connects at most ${MAX_CHANNELS_PER_PROJECT} channel accounts`);
  } catch (err) {
    if (isUniqueViolation(err, channelAccounts)) throw new ApiError("CONFLICT", `The project already has a ${body.channel} account; disconnect it first`, { errors: [{ in: "body", field: "channel", message: "already connected" }] });
    throw err;
  }
  return row;
}

export async function listChannels(c: Context<AppEnv>, projectId: string): Promise<ChannelAccountRow[]> {
  await requireProject(c, projectId, "query");
  return c.var.db
    .select()
    .from(channelAccounts)
    .where(and(eq(channelAccounts.tenantId, c.var.tenant.id), eq(channelAccounts.projectId, projectId)))
    .orderBy(asc(channelAccounts.channel));
}

/** Disconnects an account; posts scheduled for its channel fail at their minute, saying so. */
export async function disconnectChannel(c: Context<AppEnv>, projectId: string, id: string): Promise<void> {
  if (!reaches(c, projectId)) throw new ApiError("NOT_FOUND", `No project ${projectId}`);
  const db = c.var.db;
  const [deleted] = await db.batch([
    db
      .delete(channelAccounts)
      .where(and(eq(channelAccounts.tenantId, c.var.tenant.id), eq(channelAccounts.projectId, projectId), eq(channelAccounts.id, id)))
      .returning({ id: channelAccounts.id }),
    auditChange(c, { action: "channel.disconnected", resourceType: "project", resourceId: projectId, details: { account_id: id } }),
  ]);
  if (!deleted[0]) throw new ApiError("NOT_FOUND", `No channel account ${id} in project ${projectId}`);
}

/** The read of the project's connected channel names (no credentials), to batch with other reads. */
export const connectedChannels = (db: TenantDb, tenantId: string, projectId: string) =>
  db.select({ channel: channelAccounts.channel }).from(channelAccounts).where(and(eq(channelAccounts.tenantId, tenantId), eq(channelAccounts.projectId, projectId)));

/** The project's accounts with their credentials decrypted, by channel: for the publisher only. */
export async function accountsFor(db: TenantDb, key: string, tenantId: string, projectId: string): Promise<Map<string, Account>> {
  const rows = await db.select().from(channelAccounts).where(and(eq(channelAccounts.tenantId, tenantId), eq(channelAccounts.projectId, projectId)));
  const accounts = new Map<string, Account>();
  for (const r of rows) accounts.set(r.channel, { id: r.id, channel: r.channel, credentials: JSON.parse(await unseal(key, r.credentials, context(tenantId, r.id))) as Record<string, unknown> });
  return accounts;
}
