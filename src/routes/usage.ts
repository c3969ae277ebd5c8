import { createRoute, z } from "@hono/zod-openapi";
import { and, count, desc, eq, gt, gte, isNull, lt, lte, sql } from "drizzle-orm";
import { creditLedger, invitations, memberships } from "../db/control/schema";
import { storageUsedQuery } from "../db/artifacts";
import { creditBalance } from "../db/credits";
import { decodeCursor, page, PageQuery } from "../lib/pagination";
import { controlDb } from "../db/router";
import { projects, usageDaily } from "../db/tenant/schema";
import { ApiError } from "../lib/errors";
import { errors, guarded, jsonResponse, router } from "./openapi";

/** A real calendar day (`format: date` in the document), so nothing downstream meets 2026-13-45. */
const Day = z.iso.date("a UTC day as YYYY-MM-DD");
const Totals = z.object({ calls: z.number().int(), tokens_in: z.number().int(), tokens_out: z.number().int(), cost_micros: z.number().int() });
const GROUPS = { day: usageDaily.day, model: usageDaily.model, project: usageDaily.projectId, user: usageDaily.userId } as const;

const getUsage = createRoute({
  method: "get",
  path: "/v1/usage",
  tags: ["Usage"],
  summary: "Model usage and cost between two UTC days, grouped",
  ...guarded("usage:read"),
  request: {
    query: z.object({
      from: Day.optional().openapi({ description: "First day, inclusive (default: 29 days before `to`)" }),
      to: Day.optional().openapi({ description: "Last day, inclusive (default: today)" }),
      group_by: z.enum(["day", "model", "project", "user"]).default("day"),
    }),
  },
  responses: {
    200: jsonResponse(
      z.object({ from: z.string(), to: z.string(), group_by: z.string(), data: z.array(Totals.extend({ key: z.string() })), total: Totals }).openapi("Usage"),
      "Usage",
    ),
    ...errors(400, 401, 403),
  },
});

const getPlan = createRoute({
  method: "get",
  path: "/v1/plan",
  tags: ["Usage"],
  summary: "The tenant's plan, its limits, and this month's usage against them",
  ...guarded("usage:read"),
  responses: {
    200: jsonResponse(
      z
        .object({
          plan: z.object({ id: z.string(), name: z.string() }),
          limits: z.object({
            requests_per_minute: z.number().int(),
            member_requests_per_minute: z.number().int(),
            monthly_tokens: z.number().int(),
            seats: z.number().int(),
            projects: z.number().int(),
            storage_bytes: z.number().int(),
          }),
          usage: Totals.extend({ month: z.string(), tokens: z.number().int(), seats: z.number().int(), projects: z.number().int(), storage_bytes: z.number().int() }),
        })
        .openapi("PlanStatus"),
      "Plan",
    ),
    ...errors(401, 403),
  },
});

const listCredits = createRoute({
  method: "get",
  path: "/v1/credits",
  tags: ["Usage"],
  summary: "Prepaid credit: the balance and its ledger, newest first",
  ...guarded("usage:read"),
  request: { query: PageQuery },
  responses: {
    200: jsonResponse(
      z.object({
        balance_micros: z.number().int(),
        data: z.array(z.object({ id: z.string(), amount_micros: z.number().int(), kind: z.enum(["grant", "debit"]), reason: z.string(), reference: z.string().nullable(), created_at: z.string() })),
        next_cursor: z.string().nullable(),
      }).openapi("Credits"),
      "Balance and ledger",
    ),
    ...errors(400, 401, 403),
  },
});

const sums = {
  calls: sql<number>`COALESCE(SUM(${usageDaily.calls}), 0)`,
  tokens_in: sql<number>`COALESCE(SUM(${usageDaily.tokensIn}), 0)`,
  tokens_out: sql<number>`COALESCE(SUM(${usageDaily.tokensOut}), 0)`,
  cost_micros: sql<number>`COALESCE(SUM(${usageDaily.costMicros}), 0)`,
};

const dayOf = (d: Date) => d.toISOString().slice(0, 10);

/** Usage from the daily rollups, and the plan's limits beside this month's use. */
export const usageRoutes = router()
  .openapi(getUsage, async (c) => {
    const q = c.req.valid("query");
    const to = q.to ?? dayOf(new Date());
    const from = q.from ?? dayOf(new Date(Date.parse(`${to}T00:00:00Z`) - 29 * 86_400_000));
    if (from > to) {
      throw new ApiError("VALIDATION_FAILED", "`from` must be no later than `to`", { errors: [{ in: "query", field: "from", message: "after to" }] });
    }
    const tenant = c.var.tenant;
    const db = c.var.db;
    const where = and(eq(usageDaily.tenantId, tenant.id), gte(usageDaily.day, from), lte(usageDaily.day, to));
    const key = GROUPS[q.group_by];
    const [rows, totals] = await db.batch([
      db.select({ key, ...sums }).from(usageDaily).where(where).groupBy(key).orderBy(key),
      db.select(sums).from(usageDaily).where(where),
    ]);
    return c.json({ from, to, group_by: q.group_by, data: rows, total: totals[0]! }, 200);
  })
  .openapi(listCredits, async (c) => {
    const { limit, cursor } = c.req.valid("query");
    const tenantId = c.var.tenant.id;
    const db = controlDb(c.env);
    const rows = await db
      .select()
      .from(creditLedger)
      .where(and(eq(creditLedger.tenantId, tenantId), cursor ? lt(creditLedger.id, decodeCursor(cursor, "crd")) : undefined))
      .orderBy(desc(creditLedger.id))
      .limit(limit + 1);
    const entries = page(rows, limit, (r) => ({ id: r.id, amount_micros: r.amountMicros, kind: r.kind, reason: r.reason, reference: r.reference, created_at: r.createdAt }));
    return c.json({ balance_micros: await creditBalance(db, tenantId), ...entries }, 200);
  })
  .openapi(getPlan, async (c) => {
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
    return c.json(
      {
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
      },
      200,
    );
  });
