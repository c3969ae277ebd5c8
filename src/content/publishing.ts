import { and, asc, eq, lte, min, or, sql } from "drizzle-orm";
import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../context";
import { tenantById } from "../db/directory";
import { insertWhere } from "../db/insert-where";
import { eventAfterChange } from "../db/outbox";
import { type TenantDb, tenantDb } from "../db/router";
import { postPublications, postRevisions, posts } from "../db/tenant/schema";
import { type Env, loadConfig } from "../env";
import { createLogger, errorFields } from "../lib/log";
import { publisher } from "../providers/publishers";
import { accountsFor } from "./channels";
import { findPost, type PostRow, postData, type Variant } from "./posts";

/** The body of a `tessera-publish` message: one post's scheduled revision to publish. */
export const PublishMessage = z.object({ v: z.literal(1), tenant_id: z.string(), post_id: z.string(), revision: z.number().int() });
export type PublishMessage = z.infer<typeof PublishMessage>;

/** How long a queued post is held by its publishing before the sweep may queue it again. */
const PUBLISH_LEASE_MS = 10 * 60 * 1000;
/** Posts claimed by one pass of the scheduler (a minute with more takes several passes at once). */
const CLAIM_AT_ONCE = 1000;
/** Attempts before a post whose channel keeps failing is failed for good. */
export const MAX_PUBLISH_ATTEMPTS = 6;
/** Seconds before attempt n + 1: 10 s, 30 s, 1 min, 2 min, 5 min (a channel's Retry-After wins). */
const BACKOFF_SECONDS = [10, 30, 60, 120, 300];

/** Tells the tenant's scheduler a post is due at `at` (ms). */
export async function notifyScheduler(env: Env, tenant: { id: string; dbBinding: string }, at: number): Promise<void> {
  await env.PUBLISH_SCHEDULER.get(env.PUBLISH_SCHEDULER.idFromName(tenant.id)).due({ id: tenant.id, dbBinding: tenant.dbBinding }, at);
}

/** From a request: the scheduler learns of the post at once (a failure is left to the cron sweep). */
export async function scheduled(c: Context<AppEnv>, at: number): Promise<void> {
  await notifyScheduler(c.env, c.var.tenant, at).catch((err) => c.var.log.error("publishing.notify_failed", errorFields(err)));
}

/**
 * Claims every post of the tenant due by `now` — scheduled and due, or publishing with its hold run
 * out (its message lost) — as `publishing` in one statement, queues one message each, and answers
 * when the next scheduled post is due (ms), if any. Claiming in the database makes a post queued
 * once however many schedulers or sweeps run.
 */
export async function queueDuePosts(env: Env, tenant: { id: string; dbBinding: string }, now: number): Promise<{ queued: number; next: number | null }> {
  const db = tenantDb(env, tenant);
  const at = new Date(now).toISOString();
  const [claimed, upcoming] = await db.batch([
    db
      .update(posts)
      .set({ status: "publishing", publishLeaseUntil: now + PUBLISH_LEASE_MS, updatedAt: at })
      .where(
        sql`${posts.id} IN (SELECT ${posts.id} FROM ${posts} WHERE ${and(
          eq(posts.tenantId, tenant.id),
          or(and(eq(posts.status, "scheduled"), lte(posts.scheduledAt, at)), and(eq(posts.status, "publishing"), sql`${posts.publishLeaseUntil} < ${now}`)),
        )} LIMIT ${CLAIM_AT_ONCE})`,
      )
      .returning({ id: posts.id, revision: posts.scheduledRevision }),
    db
      .select({ next: min(posts.scheduledAt) })
      .from(posts)
      .where(and(eq(posts.tenantId, tenant.id), eq(posts.status, "scheduled"), sql`${posts.scheduledAt} > ${at}`)),
  ]);
  for (let i = 0; i < claimed.length; i += 100) {
    await env.PUBLISH_QUEUE.sendBatch(
      claimed.slice(i, i + 100).map((p) => ({ body: { v: 1, tenant_id: tenant.id, post_id: p.id, revision: p.revision ?? 0 } satisfies PublishMessage, contentType: "json" as const })),
    );
  }
  const next = upcoming[0]?.next;
  // More were due than one pass claims: the next pass is now.
  if (claimed.length === CLAIM_AT_ONCE) return { queued: claimed.length, next: now };
  return { queued: claimed.length, next: next ? Date.parse(next) : null };
}

/** Ends a publishing post `failed` with the reason, and its `post.failed` event. */
async function fail(db: TenantDb, post: PostRow, revision: number, error: string): Promise<void> {
  await db.batch([
    db
      .update(posts)
      .set({ status: "failed", publishError: error, publishLeaseUntil: null, updatedAt: new Date().toISOString() })
      .where(and(eq(posts.tenantId, post.tenantId), eq(posts.id, post.id), eq(posts.status, "publishing"), eq(posts.scheduledRevision, revision))),
    eventAfterChange(db, { tenantId: post.tenantId, type: "post.failed", subjectType: "post", subjectId: post.id, data: { ...postData(post), status: "failed", revision, error } }),
  ]);
}

/**
 * Publishes one post's scheduled revision to each of its channels. A channel already published
 * (an earlier attempt's) is not sent again, and the publisher dedupes by post, revision and channel
 * besides, so a retry never posts twice. When every channel has its post the post is `published`
 * with each channel's id and URL; a channel's transient failure retries with backoff, a refusal or
 * a channel no longer connected fails the post saying which.
 */
async function publishOne(env: Env, message: Message<unknown>, body: PublishMessage): Promise<void> {
  const tenant = await tenantById(env, body.tenant_id);
  if (!tenant) return message.ack();
  const db = tenantDb(env, tenant);
  const [postRows, revisionRows, done] = await db.batch([
    db.select().from(posts).where(and(eq(posts.tenantId, tenant.id), eq(posts.id, body.post_id))),
    db.select().from(postRevisions).where(and(eq(postRevisions.tenantId, tenant.id), eq(postRevisions.postId, body.post_id), eq(postRevisions.revision, body.revision))),
    db.select({ channel: postPublications.channel }).from(postPublications).where(and(eq(postPublications.tenantId, tenant.id), eq(postPublications.postId, body.post_id), eq(postPublications.revision, body.revision))),
  ]);
  const post = postRows[0];
  // Published, unscheduled, edited or archived since it was queued: nothing to do.
  if (post?.status !== "publishing" || post.scheduledRevision !== body.revision || !revisionRows[0]) return message.ack();
  if (tenant.status !== "active") {
    await fail(db, post, body.revision, `tenant_${tenant.status}: not published`);
    return message.ack();
  }
  const variants = JSON.parse(revisionRows[0].variants) as Variant[];
  const accounts = await accountsFor(db, loadConfig(env).SECRETS_KEY, tenant.id, post.projectId);
  const published = new Set(done.map((d) => d.channel));
  const to = publisher(env);
  for (const v of variants) {
    if (published.has(v.channel)) continue;
    const account = accounts.get(v.channel);
    if (!account) {
      await fail(db, post, body.revision, `channel_not_connected: the project has no ${v.channel} account`);
      return message.ack();
    }
    const result = await to.publish(account, { idempotencyKey: `${post.id}:${body.revision}:${v.channel}`, text: v.text, media: v.media.map((m) => `${m.artifact_id}@${m.version}`), link: v.link });
    if (!result.ok) {
      if (result.retryable && message.attempts < MAX_PUBLISH_ATTEMPTS) {
        return message.retry({ delaySeconds: result.retryAfterSeconds ?? BACKOFF_SECONDS[Math.min(message.attempts, BACKOFF_SECONDS.length) - 1] ?? 60 });
      }
      await fail(db, post, body.revision, `${result.retryable ? "publish_exhausted" : "publish_refused"}: ${v.channel}: ${result.error}`);
      return message.ack();
    }
    await insertWhere(db, postPublications, { tenantId: tenant.id, postId: post.id, revision: body.revision, channel: v.channel, accountId: account.id, externalId: result.externalId, url: result.url }, sql`1`)
      .onConflictDoNothing()
      .run();
  }
  const publications = await db.select().from(postPublications).where(and(eq(postPublications.tenantId, tenant.id), eq(postPublications.postId, post.id), eq(postPublications.revision, body.revision)));
  const now = new Date().toISOString();
  await db.batch([
    db
      .update(posts)
      .set({ status: "published", publishedAt: now, publishLeaseUntil: null, publishError: null, updatedAt: now })
      .where(and(eq(posts.tenantId, tenant.id), eq(posts.id, post.id), eq(posts.status, "publishing"), eq(posts.scheduledRevision, body.revision))),
    eventAfterChange(db, {
      tenantId: tenant.id,
      type: "post.published",
      subjectType: "post",
      subjectId: post.id,
      data: { ...postData(post), status: "published", revision: body.revision, publications: publications.map((p) => ({ channel: p.channel, external_id: p.externalId, url: p.url })) },
    }),
  ]);
  message.ack();
}

/** The `tessera-publish` queue: each message publishes one post's scheduled revision. */
export async function consumePublish(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const log = createLogger({ queue: batch.queue });
  await Promise.all(
    batch.messages.map(async (message) => {
      const body = PublishMessage.safeParse(message.body);
      if (!body.success) return message.ack();
      try {
        await publishOne(env, message, body.data);
      } catch (err) {
        log.error("publishing.failed", { ...errorFields(err), post_id: body.data.post_id });
        message.retry({ delaySeconds: 30 });
      }
    }),
  );
}

/** The dead-letter queue: a post whose publish messages ran out is `failed`, saying so. */
export async function consumeDeadPublish(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  for (const message of batch.messages) {
    const body = PublishMessage.safeParse(message.body);
    if (!body.success) {
      message.ack();
      continue;
    }
    const tenant = await tenantById(env, body.data.tenant_id);
    const db = tenant && tenantDb(env, tenant);
    const post = db && (await db.select().from(posts).where(and(eq(posts.tenantId, tenant.id), eq(posts.id, body.data.post_id))).get());
    if (db && post) await fail(db, post, body.data.revision, "publish_exhausted: its queue deliveries ran out");
    message.ack();
  }
}

/** Where a post was published: each channel's post, by revision then channel. */
export async function listPublications(c: Context<AppEnv>, postId: string) {
  const post = await findPost(c, postId);
  return c.var.db
    .select()
    .from(postPublications)
    .where(and(eq(postPublications.tenantId, post.tenantId), eq(postPublications.postId, post.id)))
    .orderBy(asc(postPublications.revision), asc(postPublications.channel));
}
