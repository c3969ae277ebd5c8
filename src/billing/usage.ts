import { and, count, eq, gt, gte, isNull, lte, sql } from "drizzle-orm";
import type { Context } from "hono";
import { listOwned } from "../db/owned";
import type { AppEnv } from "../context";
import { storageUsedQuery } from "../db/artifacts";
import { creditLedger, invitations, memberships } from "../db/control/schema";
import { creditBalance } from "../db/credits";
import { controlDb } from "../db/router";
import { projects, usageDaily } from "../db/tenant/schema";
import { ApiError } from "../lib/errors";

/** What usage may be grouped by. */
export const USAGE_GROUPS = { day: usageDaily.day, model: usageDaily.model, project: usageDaily.projectId, user: usageDaily.userId } as const;

const sums = {
  calls: sql<number>`COALESCE(SUM(${usageDaily.calls}), 0)`,
  tokens_in: sql<number>`COALESCE(SUM(${usageDaily.tokensIn}), 0)`,
  tokens_out: sql<number>`COALESCE(SUM(${usageDaily.tokensOut}), 0)`,
  cost_micros: sql<number>`COALESCE(SUM(${usageDaily.costMicros}), 0)`,
};

const dayOf = (d: Date) => d.toISOString().slice(0, 10);

/** Usage from the daily rollups between two UTC days (the last 30 by default), grouped, with the total. */
export async function usageBetween(c: Context<AppEnv>, q: { from?: string; to?: string; group_by: keyof typeof USAGE_GROUPS }) {
  const to = q.to ?? dayOf(new Date());
  const from = q.from ?? dayOf(new Date(Date.parse(`${to}T00:00:00Z`) - 29 * 86_400_000));
  if (from > to) {
    throw new ApiError("VALIDATION_FAILED", "`from` must be no later than `to`", { errors: [{ in: "query", field: "from", message: "after to" }] });
  }
  const db = c.var.db;
  const where = and(eq(usageDaily.tenantId, c.var.tenant.id), gte(usageDaily.day, from), lte(usageDaily.day, to));
  const key = USAGE_GROUPS[q.group_by];
  const [rows, totals] = await db.batch([
    db.select({ key, ...sums }).from(usageDaily).where(where).groupBy(key).orderBy(key),
    db.select(sums).from(usageDaily).where(where),
  ]);
  return { from, to, group_by: q.group_by, data: rows, total: totals[0]! };
}

/** The request's tenant's credit balance and its ledger, newest first. */
export const creditsPage = (c: Context<AppEnv>, q: { limit: number; cursor?: string }) => creditsOf(c, c.var.tenant.id, q);

/** A tenant's credit balance and its ledger, newest first. */
export async function creditsOf(c: Context<AppEnv>, tenantId: string, { limit, cursor }: { limit: number; cursor?: string }) {
  const db = controlDb(c.env);
  const entries = await listOwned(db, creditLedger, tenantId, { limit, cursor, prefix: "crd" }, (r) => ({ id: r.id, amount_micros: r.amountMicros, kind: r.kind, reason: r.reason, reference: r.reference, created_at: r.createdAt }));
  return { balance_micros: await creditBalance(db, tenantId), ...entries };
}

/** The plan's limits beside this month's use of each: tokens, seats, projects, storage. */
export async function planStatus(c: Context<AppEnv>) {
  const tenant = c.var.tenant;
  const plan = c.var.plan;
  const month = new Date().toISOString().slice(0, 7);
  const db = c.var.db;
  const control = controlDb(c.env);
  const now = new Date().toISOString();
  const [[used], [projectCount], [stored]] = await db.batch([
    db.select(sums).from(usageDaily).where(and(eq(usageDaily.tenantId, tenant.id), gte(usageDaily.day, `${month}-01`), lte(usageDaily.day, `${month}-31`))),
    db.select({ n: count() }).from(projects).where(eq(projects.tenantId, tenant.id)),
    storageUsedQuery(db, tenant.id),
  ]);
  const [[members], [pending]] = await control.batch([
    control.select({ n: count() }).from(memberships).where(eq(memberships.tenantId, tenant.id)),
    control.select({ n: count() }).from(invitations).where(and(eq(invitations.tenantId, tenant.id), isNull(invitations.acceptedAt), gt(invitations.expiresAt, now))),
  ]);
  return {
    plan: { id: plan.id, name: plan.name },
    limits: {
      requests_per_minute: plan.requestsPerMinute,
      member_requests_per_minute: plan.memberRequestsPerMinute,
      monthly_tokens: plan.monthlyTokens,
      seats: plan.seats,
      projects: plan.projects,
      storage_bytes: plan.storageBytes,
    },
    usage: { month, ...used!, tokens: used!.tokens_in + used!.tokens_out, seats: members!.n + pending!.n, projects: projectCount!.n, storage_bytes: stored?.bytes ?? 0 },
  };
}
