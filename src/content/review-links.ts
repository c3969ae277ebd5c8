import { and, desc, eq, isNull } from "drizzle-orm";
import { assertReachable } from "../db/owned";
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../context";
import { auditChange } from "../db/audit";
import { insertWithin } from "../db/insert-where";
import { posts, reviewLinks } from "../db/tenant/schema";
import { randomSecret, sha256Hex } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { findPost } from "./posts";

export type ReviewLinkRow = typeof reviewLinks.$inferSelect;

/** How long a review link works unless it says otherwise. */
export const DEFAULT_LINK_DAYS = 7;
/** The most links a post may have (revoked ones included). */
export const MAX_LINKS_PER_POST = 50;
const TOKEN_PREFIX = "rvw_";

/**
 * Makes a review link for one post: a random token (shown once, stored as its SHA-256) that lets
 * the person it names view the post's current revision, comment, approve or ask for changes —
 * nothing else, on no other post — until it expires or is revoked.
 */
export async function createLink(c: Context<AppEnv>, postId: string, body: { name: string; expires_in_days?: number }): Promise<ReviewLinkRow & { token: string }> {
  const post = await findPost(c, postId);
  const token = `${TOKEN_PREFIX}${randomSecret(32)}`;
  const now = new Date();
  const row: ReviewLinkRow = {
    id: newId("rvl"),
    tenantId: post.tenantId,
    postId,
    name: body.name,
    tokenHash: await sha256Hex(token),
    expiresAt: new Date(now.getTime() + (body.expires_in_days ?? DEFAULT_LINK_DAYS) * 86_400_000).toISOString(),
    revokedAt: null,
    createdBy: c.var.principal.userId,
    createdAt: now.toISOString(),
  };
  const db = c.var.db;
  const [inserted] = await db.batch([
    insertWithin(db, reviewLinks, row, and(eq(reviewLinks.tenantId, row.tenantId), eq(reviewLinks.postId, postId)), MAX_LINKS_PER_POST).returning({ id: reviewLinks.id }),
    auditChange(c, { action: "review_link.created", resourceType: "post", resourceId: postId, details: { link_id: row.id, name: row.name, expires_at: row.expiresAt } }),
  ]);
  if (!inserted[0]) throw new ApiError("PLAN_LIMIT", `A post may have at most ${MAX_LINKS_PER_POST} review links`);
  return { ...row, token };
}

/** A post's review links, newest first. */
export async function listLinks(c: Context<AppEnv>, postId: string): Promise<ReviewLinkRow[]> {
  await findPost(c, postId);
  return c.var.db
    .select()
    .from(reviewLinks)
    .where(and(eq(reviewLinks.tenantId, c.var.tenant.id), eq(reviewLinks.postId, postId)))
    .orderBy(desc(reviewLinks.id))
    .limit(MAX_LINKS_PER_POST);
}

/** Revokes a link at once: its next use is a 410. */
export async function revokeLink(c: Context<AppEnv>, postId: string, linkId: string): Promise<void> {
  await assertReachable(c, posts, postId, "post");
  const db = c.var.db;
  const [revoked] = await db.batch([
    db
      .update(reviewLinks)
      .set({ revokedAt: new Date().toISOString() })
      .where(and(eq(reviewLinks.tenantId, c.var.tenant.id), eq(reviewLinks.postId, postId), eq(reviewLinks.id, linkId), isNull(reviewLinks.revokedAt)))
      .returning({ id: reviewLinks.id }),
    auditChange(c, { action: "review_link.revoked", resourceType: "post", resourceId: postId, details: { link_id: linkId } }),
  ]);
  if (revoked[0]) return;
  const row = await db.select().from(reviewLinks).where(and(eq(reviewLinks.tenantId, c.var.tenant.id), eq(reviewLinks.postId, postId), eq(reviewLinks.id, linkId))).get();
  if (!row) throw new ApiError("NOT_FOUND", `No review link ${linkId} on post ${postId}`);
}

/**
 * The guest routes' credential: the `{token}` in the path names a live link of this tenant, and the
 * request acts as that link's guest (on its one post). An unknown token is a 404; a revoked or
 * expired one, 410.
 */
export function guestLink() {
  return createMiddleware<AppEnv>(async function guestLink(c, next) {
    const token = c.req.param("token") ?? "";
    const link = token.startsWith(TOKEN_PREFIX)
      ? await c.var.db
          .select()
          .from(reviewLinks)
          .where(and(eq(reviewLinks.tenantId, c.var.tenant.id), eq(reviewLinks.tokenHash, await sha256Hex(token))))
          .get()
      : undefined;
    if (!link) throw new ApiError("NOT_FOUND", "No such review link");
    if (link.revokedAt) throw new ApiError("REVIEW_LINK_INVALID", "This review link was revoked; ask for a new one");
    const expires = Date.parse(link.expiresAt);
    if (expires <= Date.now()) throw new ApiError("REVIEW_LINK_INVALID", `This review link expired at ${link.expiresAt}; ask for a new one`);
    // The link, not a project list, bounds a guest: every guest route acts on the link's one post.
    c.set("principal", { kind: "guest", linkId: link.id, postId: link.postId, name: link.name, userId: link.id, role: "viewer", permissions: new Set(), projects: null, expiresAt: expires });
    await next();
  });
}

/** The guest's post id: the one their link is for. */
export function guestPostId(c: Context<AppEnv>): string {
  const p = c.var.principal;
  if (p.kind !== "guest") throw new ApiError("FORBIDDEN", "Only a review link reviews through this route");
  return p.postId;
}
