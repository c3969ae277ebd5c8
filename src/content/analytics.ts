import { and, eq, gte, lte, sql } from "drizzle-orm";
import type { Context } from "hono";
import type { AppEnv } from "../context";
import { insertWhere } from "../db/insert-where";
import { type TenantDb, tenantDb } from "../db/router";
import { postMetrics, postPublications, posts } from "../db/tenant/schema";
import { type Env, loadConfig } from "../env";
import { ApiError } from "../lib/errors";
import { publisher } from "../providers/publishers";
import { findCampaign } from "./campaigns";
import { accountsFor } from "./channels";

/** Posts are followed this long after they were published. */
const FOLLOW_DAYS = 30;
/** Publications whose counts one sweep collects, per tenant. */
const PER_PASS = 200;

const hourOf = (ms: number) => `${new Date(ms).toISOString().slice(0, 13)}:00:00.000Z`;

/**
 * Collects this hour's counts of the tenant's published posts (each publication at most once an
 * hour, those published in the last 30 days) from their publisher, stored as cumulative snapshots.
 * Runs from the cron sweep. Answers how many snapshots it wrote.
 */
export async function collectMetrics(env: Env, tenant: { id: string; dbBinding: string }, now = Date.now()): Promise<number> {
  const db = tenantDb(env, tenant);
  const hour = hourOf(now);
  const due = await db
    .select({ postId: postPublications.postId, channel: postPublications.channel, externalId: postPublications.externalId, projectId: posts.projectId, campaignId: posts.campaignId })
    .from(postPublications)
    .innerJoin(posts, and(eq(posts.tenantId, postPublications.tenantId), eq(posts.id, postPublications.postId)))
    .where(
      and(
        eq(postPublications.tenantId, tenant.id),
        sql`${posts.status} = 'published' AND ${posts.scheduledRevision} = ${postPublications.revision}`,
        gte(postPublications.publishedAt, new Date(now - FOLLOW_DAYS * 86_400_000).toISOString()),
        sql`NOT EXISTS (SELECT 1 FROM ${postMetrics} m WHERE m.post_id = ${postPublications.postId} AND m.channel = ${postPublications.channel} AND m.hour = ${hour})`,
      ),
    )
    .limit(PER_PASS);
  if (!due.length) return 0;
  const to = publisher(env);
  const key = loadConfig(env).SECRETS_KEY;
  const accounts = new Map<string, Awaited<ReturnType<typeof accountsFor>>>();
  const rows: (typeof postMetrics.$inferInsert)[] = [];
  for (const p of due) {
    if (!accounts.has(p.projectId)) accounts.set(p.projectId, await accountsFor(db, key, tenant.id, p.projectId));
    const account = accounts.get(p.projectId)!.get(p.channel);
    if (!account) continue;
    const m = await to.metrics(account, p.externalId);
    if (m) rows.push({ tenantId: tenant.id, postId: p.postId, campaignId: p.campaignId, channel: p.channel, hour, ...m });
  }
  if (!rows.length) return 0;
  const list = JSON.stringify(rows.map((r) => [r.postId, r.campaignId, r.channel, r.impressions, r.clicks, r.reactions, r.shares, r.conversions]));
  const col = (i: number) => sql`json_extract(j.value, ${`$[${i}]`})`;
  await insertWhere(
    db,
    postMetrics,
    { tenantId: tenant.id, postId: col(0), campaignId: col(1), channel: col(2), hour, impressions: col(3), clicks: col(4), reactions: col(5), shares: col(6), conversions: col(7) },
    sql`1`,
    sql`json_each(${list}) j`,
  )
    .onConflictDoNothing()
    .run();
  return rows.length;
}

export type Granularity = "hour" | "day";

interface Counts {
  impressions: number;
  clicks: number;
  reactions: number;
  shares: number;
  conversions: number | null;
}

/**
 * A campaign's performance between `from` and `to`: each post and channel's latest counts in the
 * window (they are cumulative), summed into totals, per channel and per post; a series of the
 * counts reached by the end of each hour or day; and the funnel impressions → clicks → conversions.
 */
export async function campaignAnalytics(c: Context<AppEnv>, campaignId: string, q: { from?: string; to?: string; granularity: Granularity }) {
  const campaign = await findCampaign(c, campaignId);
  const to = q.to ? Date.parse(q.to) : Date.now();
  const from = q.from ? Date.parse(q.from) : campaign.startsOn ? Date.parse(campaign.startsOn) : to - 30 * 86_400_000;
  if (from > to) throw new ApiError("VALIDATION_FAILED", "The window ends before it starts", { errors: [{ in: "query", field: "to", message: "before from" }] });
  if (to - from > 366 * 86_400_000) throw new ApiError("VALIDATION_FAILED", "At most a year at a time", { errors: [{ in: "query", field: "from", message: "more than 366 days before to" }] });
  const db: TenantDb = c.var.db;
  const rows = await db
    .select({ postId: postMetrics.postId, title: posts.title, channel: postMetrics.channel, hour: postMetrics.hour, impressions: postMetrics.impressions, clicks: postMetrics.clicks, reactions: postMetrics.reactions, shares: postMetrics.shares, conversions: postMetrics.conversions })
    .from(postMetrics)
    .innerJoin(posts, and(eq(posts.tenantId, postMetrics.tenantId), eq(posts.id, postMetrics.postId)))
    .where(and(eq(postMetrics.tenantId, campaign.tenantId), eq(postMetrics.campaignId, campaignId), gte(postMetrics.hour, hourOf(from)), lte(postMetrics.hour, new Date(to).toISOString())))
    .orderBy(postMetrics.hour)
    .limit(100_000);
  const bucketOf = (hour: string) => (q.granularity === "day" ? `${hour.slice(0, 10)}T00:00:00.000Z` : hour);
  const zero = (): Counts => ({ impressions: 0, clicks: 0, reactions: 0, shares: 0, conversions: null });
  const add = (a: Counts, b: Counts) => {
    a.impressions += b.impressions;
    a.clicks += b.clicks;
    a.reactions += b.reactions;
    a.shares += b.shares;
    if (b.conversions !== null) a.conversions = (a.conversions ?? 0) + b.conversions;
  };
  // The latest snapshot of each post and channel, overall and by the end of each bucket.
  const latest = new Map<string, (typeof rows)[number]>();
  const byBucket = new Map<string, Map<string, (typeof rows)[number]>>();
  for (const r of rows) {
    latest.set(`${r.postId}|${r.channel}`, r);
    const bucket = bucketOf(r.hour);
    if (!byBucket.has(bucket)) byBucket.set(bucket, new Map(latest));
    byBucket.get(bucket)!.set(`${r.postId}|${r.channel}`, r);
  }
  const totals = zero();
  const channels = new Map<string, Counts>();
  const postsSeen = new Map<string, Counts & { title: string }>();
  for (const r of latest.values()) {
    add(totals, r);
    if (!channels.has(r.channel)) channels.set(r.channel, zero());
    add(channels.get(r.channel)!, r);
    if (!postsSeen.has(r.postId)) postsSeen.set(r.postId, { ...zero(), title: r.title });
    add(postsSeen.get(r.postId)!, r);
  }
  const series = [...byBucket].map(([bucket, snapshot]) => {
    const counts = zero();
    for (const r of snapshot.values()) add(counts, r);
    return { bucket, ...counts };
  });
  return {
    campaign_id: campaignId,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    granularity: q.granularity,
    totals,
    by_channel: [...channels].map(([channel, counts]) => ({ channel, ...counts })),
    by_post: [...postsSeen].map(([post_id, { title, ...counts }]) => ({ post_id, title, ...counts })),
    series,
    funnel: { impressions: totals.impressions, clicks: totals.clicks, conversions: totals.conversions, click_rate: totals.impressions ? totals.clicks / totals.impressions : null },
  };
}
