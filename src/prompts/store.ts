import { and, asc, eq, gt, sql } from "drizzle-orm";
import type { Context } from "hono";
import type { AppEnv } from "../context";
import { auditChange } from "../db/audit";
import { insertWhere } from "../db/insert-where";
import { prompts, promptVersions, runs } from "../db/tenant/schema";
import { ApiError } from "../lib/errors";
import { decodeCursorValue, encodeCursor } from "../lib/pagination";
import { templateVariables } from "../runs/template";

export type PromptRow = typeof prompts.$inferSelect;
export type VersionRow = typeof promptVersions.$inferSelect;

const ofPrompt = (c: Context<AppEnv>, key: string) => and(eq(promptVersions.tenantId, c.var.tenant.id), eq(promptVersions.promptKey, key));

/** A prompt of this tenant with its versions (oldest first), or 404. */
export async function findPrompt(c: Context<AppEnv>, key: string): Promise<{ prompt: PromptRow; versions: VersionRow[] }> {
  const db = c.var.db;
  const [found, versions] = await db.batch([
    db.select().from(prompts).where(and(eq(prompts.tenantId, c.var.tenant.id), eq(prompts.key, key))),
    db.select().from(promptVersions).where(ofPrompt(c, key)).orderBy(asc(promptVersions.version)),
  ]);
  if (!found[0]) throw new ApiError("NOT_FOUND", `No prompt ${key}`);
  return { prompt: found[0], versions };
}

export async function findVersion(c: Context<AppEnv>, key: string, version: number): Promise<VersionRow> {
  const row = await c.var.db
    .select()
    .from(promptVersions)
    .where(and(ofPrompt(c, key), eq(promptVersions.version, version)))
    .get();
  if (!row) throw new ApiError("NOT_FOUND", `No version ${version} of prompt ${key}`);
  return row;
}

/** Prompts in key order, a page at a time (the cursor carries the last key). */
export async function listPrompts(c: Context<AppEnv>, q: { limit: number; cursor?: string }) {
  const after = q.cursor ? decodeCursorValue(q.cursor) : undefined;
  const rows = await c.var.db
    .select()
    .from(prompts)
    .where(and(eq(prompts.tenantId, c.var.tenant.id), after !== undefined ? gt(prompts.key, after) : undefined))
    .orderBy(asc(prompts.key))
    .limit(q.limit + 1);
  const data = rows.slice(0, q.limit);
  return { rows: data, next_cursor: rows.length > q.limit ? encodeCursor(data.at(-1)!.key) : null };
}

/**
 * Adds the next version of prompt `key` (creating the prompt with version 1): the counter and the
 * version in one transaction, so concurrent writers get consecutive numbers. A first version
 * weighs 100 and later ones 0 unless a weight is given.
 */
export async function createVersion(c: Context<AppEnv>, key: string, body: { template: string; weight?: number; note?: string | null }): Promise<VersionRow> {
  const { db, tenant } = c.var;
  const now = new Date().toISOString();
  const userId = c.var.principal.userId;
  const version = {
    tenantId: tenant.id,
    promptKey: key,
    version: sql`p.latest_version`,
    template: body.template,
    variables: JSON.stringify(templateVariables(body.template)),
    weight: body.weight ?? sql`CASE WHEN p.latest_version = 1 THEN 100 ELSE 0 END`,
    note: body.note ?? null,
    createdBy: userId,
    createdAt: now,
  };
  const [, inserted] = await db.batch([
    db
      .insert(prompts)
      .values({ tenantId: tenant.id, key, latestVersion: 1, createdBy: userId, createdAt: now, updatedAt: now })
      .onConflictDoUpdate({ target: [prompts.tenantId, prompts.key], set: { latestVersion: sql`${prompts.latestVersion} + 1`, updatedAt: now } }),
    insertWhere(db, promptVersions, version, sql`p.tenant_id = ${tenant.id} AND p.key = ${key}`, sql`${prompts} p`).returning(),
    auditChange(c, { action: "prompt.version_created", resourceType: "prompt", resourceId: key }),
  ]);
  return inserted[0]!;
}

/** Sets every version's weight at once (versions not named get 0); a version the prompt lacks is a 404 naming it. */
export async function setWeights(c: Context<AppEnv>, key: string, weights: Record<string, number>) {
  const found = await findPrompt(c, key);
  const known = new Set(found.versions.map((v) => v.version));
  const unknown = Object.keys(weights).filter((v) => !known.has(Number(v)));
  if (unknown.length) {
    throw new ApiError("NOT_FOUND", `Prompt ${key} has no version ${unknown.join(", ")}`, {
      errors: unknown.map((v) => ({ in: "body", field: `weights.${v}`, message: "no such version" })),
    });
  }
  const cases = sql.join(
    Object.entries(weights).map(([v, w]) => sql`WHEN ${Number(v)} THEN ${w}`),
    sql` `,
  );
  const db = c.var.db;
  await db.batch([
    db
      .update(promptVersions)
      .set({ weight: sql`CASE ${promptVersions.version} ${cases} ELSE 0 END` })
      .where(ofPrompt(c, key)),
    auditChange(c, { action: "prompt.weights_changed", resourceType: "prompt", resourceId: key, details: { weights } }),
  ]);
  return { ...found, versions: found.versions.map((v) => ({ ...v, weight: weights[String(v.version)] ?? 0 })) };
}

/** How each version of the prompt has done in runs: counts by outcome, tokens and latency. */
export async function promptStats(c: Context<AppEnv>, key: string) {
  const { versions } = await findPrompt(c, key);
  const rows = await c.var.db
    .select({
      version: runs.promptVersion,
      runs: sql<number>`count(*)`,
      succeeded: sql<number>`sum(${runs.status} = 'SUCCEEDED')`,
      failed: sql<number>`sum(${runs.status} = 'FAILED')`,
      canceled: sql<number>`sum(${runs.status} = 'CANCELED')`,
      tokensIn: sql<number>`coalesce(sum(${runs.tokensIn}), 0)`,
      tokensOut: sql<number>`coalesce(sum(${runs.tokensOut}), 0)`,
      avgLatency: sql<number | null>`avg(CASE WHEN ${runs.status} = 'SUCCEEDED' THEN ${runs.latencyMs} END)`,
      maxLatency: sql<number | null>`max(CASE WHEN ${runs.status} = 'SUCCEEDED' THEN ${runs.latencyMs} END)`,
    })
    .from(runs)
    .where(and(eq(runs.tenantId, c.var.tenant.id), eq(runs.promptKey, key)))
    .groupBy(runs.promptVersion);
  const byVersion = new Map(rows.map((r) => [r.version, r]));
  return {
    key,
    versions: versions.map((v) => {
      const r = byVersion.get(v.version);
      const finished = (r?.succeeded ?? 0) + (r?.failed ?? 0);
      const total = r?.runs ?? 0;
      return {
        version: v.version,
        weight: v.weight,
        runs: total,
        succeeded: r?.succeeded ?? 0,
        failed: r?.failed ?? 0,
        canceled: r?.canceled ?? 0,
        in_progress: total - finished - (r?.canceled ?? 0),
        failure_rate: finished ? (r?.failed ?? 0) / finished : null,
        tokens_in: r?.tokensIn ?? 0,
        tokens_out: r?.tokensOut ?? 0,
        avg_tokens_per_run: total ? ((r?.tokensIn ?? 0) + (r?.tokensOut ?? 0)) / total : null,
        avg_latency_ms: r?.avgLatency === null || r?.avgLatency === undefined ? null : Math.round(r.avgLatency),
        max_latency_ms: r?.maxLatency ?? null,
      };
    }),
  };
}
