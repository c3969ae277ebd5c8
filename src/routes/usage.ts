import { createRoute, z } from "@hono/zod-openapi";
import * as usage from "../billing/usage";
import { PageQuery } from "../lib/pagination";
import { CreditsSchema, errors, guarded, jsonResponse, router } from "./openapi";

/** A real calendar day (`format: date` in the document), so nothing downstream meets 2026-13-45. */
const Day = z.iso.date("a UTC day as YYYY-MM-DD");
const Totals = z.object({ calls: z.number().int(), tokens_in: z.number().int(), tokens_out: z.number().int(), cost_micros: z.number().int() });

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
      CreditsSchema,
      "Balance and ledger",
    ),
    ...errors(400, 401, 403),
  },
});

/** Usage from the daily rollups, and the plan's limits beside this month's use. */
export const usageRoutes = router()
  .openapi(getUsage, async (c) => c.json(await usage.usageBetween(c, c.req.valid("query")), 200))
  .openapi(listCredits, async (c) => c.json(await usage.creditsPage(c, c.req.valid("query")), 200))
  .openapi(getPlan, async (c) => c.json(await usage.planStatus(c), 200));
