import { and, eq, inArray, lt } from "drizzle-orm";
import type { Context } from "hono";
import type { AppEnv } from "../context";
import { auditInsert, actorOf } from "../db/audit";
import { type TenantDb, tenantDb } from "../db/router";
import { artifacts, artifactVersions, auditLog, complianceSettings, runs, webhookAttempts } from "../db/tenant/schema";
import type { Env } from "../env";
import { newId } from "../lib/ids";
import { bucketOf, type Placed } from "../tenants/residency";

export type ComplianceSettings = Omit<typeof complianceSettings.$inferSelect, "tenantId" | "updatedBy" | "updatedAt"> & { updatedBy: string | null; updatedAt: string | null };

/** What a tenant that never set its policy gets (the table's defaults). */
export const DEFAULT_SETTINGS: ComplianceSettings = { runRetentionDays: null, auditRetentionDays: 400, webhookRetentionDays: 30, uploadsOnErasure: "keep", updatedBy: null, updatedAt: null };

export async function settingsOf(db: TenantDb, tenantId: string): Promise<ComplianceSettings> {
  const row = await db.select().from(complianceSettings).where(eq(complianceSettings.tenantId, tenantId)).get();
  return row ?? DEFAULT_SETTINGS;
}

export interface SettingsChange {
  run_retention_days?: number | null;
  audit_retention_days?: number;
  webhook_retention_days?: number;
  uploads_on_erasure?: "keep" | "erase";
}

/** Changes the tenant's retention and erasure policy; the change and its audit entry land together. */
export async function changeSettings(c: Context<AppEnv>, body: SettingsChange): Promise<ComplianceSettings> {
  const db = c.var.db;
  const tenantId = c.var.tenant.id;
  const now = settingsOf(db, tenantId);
  const next = { ...(await now) };
  if (body.run_retention_days !== undefined) next.runRetentionDays = body.run_retention_days;
  if (body.audit_retention_days !== undefined) next.auditRetentionDays = body.audit_retention_days;
  if (body.webhook_retention_days !== undefined) next.webhookRetentionDays = body.webhook_retention_days;
  if (body.uploads_on_erasure !== undefined) next.uploadsOnErasure = body.uploads_on_erasure;
  const row = { tenantId, runRetentionDays: next.runRetentionDays, auditRetentionDays: next.auditRetentionDays, webhookRetentionDays: next.webhookRetentionDays, uploadsOnErasure: next.uploadsOnErasure, updatedBy: c.var.principal.userId, updatedAt: new Date().toISOString() };
  const [saved] = await db.batch([
    db.insert(complianceSettings).values(row).onConflictDoUpdate({ target: complianceSettings.tenantId, set: row }).returning(),
    auditInsert(db, tenantId, actorOf(c.var.principal), c.var.requestId, { action: "compliance.settings_changed", resourceType: "tenant", resourceId: tenantId, details: { ...body } }),
  ]);
  return saved[0]!;
}

const DAY_MS = 86_400_000;
/** Rows one table loses per sweep at most: the next sweep (5 minutes on) goes on. */
const PER_SWEEP = 1000;

/**
 * Deletes what the tenant's policy no longer keeps: audit entries, webhook attempts and, if set,
 * finished runs with the artifacts they produced (bytes included). Ids are time-ordered, so "older
 * than N days" is "id below the id minted N days ago", read off the primary key. Answers how many rows went.
 */
export async function sweepRetention(env: Env, tenant: { id: string; dbBinding: string } & Placed, now = Date.now()): Promise<number> {
  const db = tenantDb(env, tenant);
  const s = await settingsOf(db, tenant.id);
  const before = (prefix: "aud" | "wha" | "run", days: number) => newId(prefix, now - days * DAY_MS).slice(0, 14);
  const oldest = <T extends typeof auditLog | typeof webhookAttempts>(table: T, prefix: "aud" | "wha", days: number) =>
    db.delete(table).where(inArray(table.id, db.select({ id: table.id }).from(table).where(and(eq(table.tenantId, tenant.id), lt(table.id, before(prefix, days)))).limit(PER_SWEEP)));
  const results = await db.batch([oldest(auditLog, "aud", s.auditRetentionDays), oldest(webhookAttempts, "wha", s.webhookRetentionDays)]);
  let deleted = results.reduce((n, r) => n + (r.meta.changes ?? 0), 0);
  if (s.runRetentionDays !== null) deleted += await sweepRuns(bucketOf(env, tenant), db, tenant.id, before("run", s.runRetentionDays));
  return deleted;
}

/** Runs one sweep deletes at most: their ids are bound parameters (D1 takes 100 a statement). */
const RUNS_PER_SWEEP = 50;

/** Finished runs older than the cutoff, with their artifacts: the bytes first, then the rows in one batch. */
async function sweepRuns(bucket: R2Bucket, db: TenantDb, tenantId: string, cutoff: string): Promise<number> {
  const due = await db
    .select({ id: runs.id })
    .from(runs)
    .where(and(eq(runs.tenantId, tenantId), lt(runs.id, cutoff), inArray(runs.status, ["SUCCEEDED", "FAILED", "CANCELED"])))
    .limit(RUNS_PER_SWEEP);
  if (!due.length) return 0;
  const ids = due.map((r) => r.id);
  const produced = db.select({ id: artifacts.id }).from(artifacts).where(and(eq(artifacts.tenantId, tenantId), inArray(artifacts.runId, ids)));
  const keys = await db.select({ key: artifactVersions.r2Key }).from(artifactVersions).where(inArray(artifactVersions.artifactId, produced));
  for (let i = 0; i < keys.length; i += 1000) await bucket.delete(keys.slice(i, i + 1000).map((k) => k.key));
  const results = await db.batch([
    db.delete(artifactVersions).where(inArray(artifactVersions.artifactId, produced)),
    db.delete(artifacts).where(and(eq(artifacts.tenantId, tenantId), inArray(artifacts.runId, ids))),
    db.delete(runs).where(and(eq(runs.tenantId, tenantId), inArray(runs.id, ids))),
  ]);
  return results.reduce((n, r) => n + (r.meta.changes ?? 0), 0);
}
