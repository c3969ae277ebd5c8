import { and, eq } from "drizzle-orm";
import { ApiError } from "../lib/errors";
import type { TenantDb } from "./router";
import { tokenQuota } from "./tenant/schema";

/** YYYY-MM (UTC): the quota period a time falls in. */
export const monthOf = (d: Date) => d.toISOString().slice(0, 7);

/** The query for this month's quota row (none before the month's first reservation), for a batch. */
export function quotaRow(db: TenantDb, tenantId: string, now = new Date()) {
  return db.select({ used: tokenQuota.used, reserved: tokenQuota.reserved }).from(tokenQuota).where(and(eq(tokenQuota.tenantId, tenantId), eq(tokenQuota.month, monthOf(now))));
}

/** Seconds until the first second of next month (UTC), when monthly quotas start again. */
export function secondsToNextMonth(now = new Date()): number {
  return Math.ceil((Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1) - now.getTime()) / 1000);
}

/** The 429 for a spent monthly quota, with Retry-After at the start of next month. */
export function quotaExceeded(detail: string, now = new Date()): ApiError {
  return new ApiError("QUOTA_EXCEEDED", detail, { headers: { "Retry-After": String(secondsToNextMonth(now)) } });
}
