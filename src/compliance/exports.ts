import { and, desc, eq, inArray, lt, or, sql } from "drizzle-orm";
import type { Context } from "hono";
import type { AppEnv } from "../context";
import { auditChange } from "../db/audit";
import { tenantById } from "../db/directory";
import { insertWithin } from "../db/insert-where";
import { tenantDatabase, type TenantDb, tenantDb } from "../db/router";
import { exports } from "../db/tenant/schema";
import type { Env } from "../env";
import { hmacHex, timingSafeEqualString } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { roomOf } from "../conversations/sockets";
import { bucketOf, type Placed } from "../tenants/residency";
import { ArchiveTooLarge, ArchiveWriter, type ArchivedFile, chunksOf, MAX_ARCHIVE_BYTES, ndjson } from "./archive";
import { TENANT_TABLES } from "./plan";

export type ExportRow = typeof exports.$inferSelect;

/** The compliance queue's message for an export. */
export interface ExportMessage {
  v: 1;
  kind: "export";
  tenant_id: string;
  export_id: string;
}

/** The archive's layout version, in its manifest: a reader checks it before reading the files. */
export const EXPORT_SCHEMA_VERSION = 1;
/** Exports are deleted, archive and all, this long after they were asked for. */
export const EXPORT_TTL_DAYS = 7;
/** A download link works this long; every GET of the export makes a fresh one. */
export const DOWNLOAD_LINK_SECONDS = 600;
/** Exports a tenant keeps at once (queued, running, ready or failed), until they expire or are deleted. */
export const MAX_EXPORTS = 20;
const PAGE = 500;
const DAY_MS = 86_400_000;

/** Tables an export leaves out, and why (everything else of the tenant's database is in it). */
export const NOT_EXPORTED: Record<string, string> = {
  live_sockets: "bookkeeping of open connections",
  quota_holds: "in-flight reservations of the month's tokens",
  knowledge_chunks: "derived from the knowledge documents, whose originals are in the archive",
  exports: "the exports themselves",
};

/** Columns an export leaves out: secrets, which the API never shows either. */
const SECRET_COLUMNS: Record<string, string[]> = {
  webhook_endpoints: ["secret", "previous_secret"],
  channel_accounts: ["credentials"],
  review_links: ["token_hash"],
};

const objectKey = (tenantId: string, id: string) => `tenants/${tenantId}/exports/${id}.zip`;

/** Who may see an export: its requester; a tenant export also whoever may manage compliance. */
const visibleTo = (c: Context<AppEnv>) =>
  c.var.principal.permissions.has("compliance:manage") ? or(eq(exports.requestedBy, c.var.principal.userId), eq(exports.scope, "tenant")) : eq(exports.requestedBy, c.var.principal.userId);

/**
 * Asks for an export: queued at once (202), written by the compliance queue's consumer. The same
 * requester asking again for the same scope while one is queued or running gets that one.
 */
export async function requestExport(c: Context<AppEnv>, scope: "me" | "tenant"): Promise<ExportRow> {
  const p = c.var.principal;
  if (scope === "tenant" && !p.permissions.has("compliance:manage")) throw new ApiError("FORBIDDEN", "Exporting the whole tenant needs the compliance:manage permission (owners and admins)");
  const db = c.var.db;
  const tenantId = c.var.tenant.id;
  const pending = and(eq(exports.tenantId, tenantId), eq(exports.requestedBy, p.userId), eq(exports.scope, scope), inArray(exports.status, ["queued", "running"]));
  const existing = await db.select().from(exports).where(pending).get();
  if (existing) return existing;
  const id = newId("exp");
  const expiresAt = new Date(Date.now() + EXPORT_TTL_DAYS * DAY_MS).toISOString();
  const [inserted] = await db.batch([
    insertWithin(db, exports, { id, tenantId, scope, requestedBy: p.userId, expiresAt }, eq(exports.tenantId, tenantId), MAX_EXPORTS).returning(),
    auditChange(c, { action: "export.requested", resourceType: "export", resourceId: id, details: { scope } }),
  ]);
  if (!inserted.length) throw new ApiError("CONFLICT", `This tenant keeps at most ${MAX_EXPORTS} exports; delete one (DELETE /v1/exports/{id}) or wait for one to expire`);
  await c.env.COMPLIANCE_QUEUE.send({ v: 1, kind: "export", tenant_id: tenantId, export_id: id } satisfies ExportMessage);
  return inserted[0]!;
}

export async function findExport(c: Context<AppEnv>, id: string): Promise<ExportRow> {
  const row = await c.var.db
    .select()
    .from(exports)
    .where(and(eq(exports.tenantId, c.var.tenant.id), eq(exports.id, id), visibleTo(c)))
    .get();
  if (!row) throw new ApiError("NOT_FOUND", `No export ${id}`);
  return row;
}

export async function listExports(c: Context<AppEnv>, limit: number) {
  return c.var.db
    .select()
    .from(exports)
    .where(and(eq(exports.tenantId, c.var.tenant.id), visibleTo(c)))
    .orderBy(desc(exports.id))
    .limit(limit);
}

/** Deletes an export and its archive. */
export async function deleteExport(c: Context<AppEnv>, id: string): Promise<void> {
  const row = await findExport(c, id);
  const [deleted] = await c.var.db.batch([
    c.var.db.delete(exports).where(and(eq(exports.tenantId, c.var.tenant.id), eq(exports.id, id))).returning(),
    auditChange(c, { action: "export.deleted", resourceType: "export", resourceId: id, details: { scope: row.scope } }),
  ]);
  if (!deleted.length) throw new ApiError("NOT_FOUND", `No export ${id}`);
  await bucketOf(c.env, c.var.tenant).delete(objectKey(c.var.tenant.id, id));
}

/** A signed link to an export's archive, good for DOWNLOAD_LINK_SECONDS: the link is the credential. */
export async function downloadLink(c: Context<AppEnv>, row: ExportRow): Promise<{ url: string; expiresAt: string }> {
  const expires = Math.floor(Date.now() / 1000) + DOWNLOAD_LINK_SECONDS;
  const signature = await linkSignature(c.var.config.SECRETS_KEY, row.tenantId, row.id, expires);
  const origin = new URL(c.req.url).origin;
  return { url: `${origin}/v1/exports/${row.id}/archive?expires=${expires}&signature=${signature}`, expiresAt: new Date(expires * 1000).toISOString() };
}

const linkSignature = (secret: string, tenantId: string, id: string, expires: number) => hmacHex(secret, `export-download:${tenantId}:${id}:${expires}`);

/** The archive a signed link names, streamed from R2; an expired or altered link (or another tenant's) is 401. */
export async function openArchive(c: Context<AppEnv>, id: string, q: { expires: number; signature: string }): Promise<Response> {
  const expected = await linkSignature(c.var.config.SECRETS_KEY, c.var.tenant.id, id, q.expires);
  if (!timingSafeEqualString(expected, q.signature)) throw new ApiError("INVALID_TOKEN", "This download link is not valid here: ask GET /v1/exports/{id} for a fresh one");
  if (q.expires * 1000 < Date.now()) throw new ApiError("INVALID_TOKEN", "This download link has expired: ask GET /v1/exports/{id} for a fresh one");
  const row = await c.var.db.select().from(exports).where(and(eq(exports.tenantId, c.var.tenant.id), eq(exports.id, id), eq(exports.status, "ready"))).get();
  const object = row?.objectKey ? await bucketOf(c.env, c.var.tenant).get(row.objectKey) : null;
  if (!row || !object) throw new ApiError("NOT_FOUND", `No archive for export ${id}`);
  return new Response(object.body, {
    headers: { "content-type": "application/zip", "content-length": String(object.size), "content-disposition": `attachment; filename="tessera-${row.scope}-${row.id}.zip"`, "cache-control": "private, no-store" },
  });
}

// ---- Writing the archive -----------------------------------------------------------------------

interface Scope {
  tenantId: string;
  /** Where the tenant's objects and rooms are (its jurisdiction). */
  tenant: Placed;
  scope: "me" | "tenant";
  userId: string;
  /** The person's ids (theirs and their keys'), for a `me` export. */
  ids: string[];
}

/**
 * The queue's work for one export: every file written into one ZIP streamed to R2, then the
 * manifest. A retried message starts the archive again (a new upload; the old parts are discarded).
 */
export async function writeExport(env: Env, message: ExportMessage): Promise<void> {
  const tenant = await tenantById(env, message.tenant_id);
  if (!tenant) return; // Erased (or being erased): the export goes with it.
  const db = tenantDb(env, tenant);
  const row = await db.select().from(exports).where(and(eq(exports.tenantId, tenant.id), eq(exports.id, message.export_id))).get();
  if (!row || row.status === "ready" || row.status === "expired") return;
  await db.update(exports).set({ status: "running", startedAt: new Date().toISOString(), error: null }).where(eq(exports.id, row.id)).run();
  const keys = row.scope === "me" ? (await env.CONTROL_DB.prepare("SELECT id FROM api_keys WHERE tenant_id = ? AND created_by = ?").bind(tenant.id, row.requestedBy).all<{ id: string }>()).results.map((k) => k.id) : [];
  const scope: Scope = { tenantId: tenant.id, tenant, scope: row.scope, userId: row.requestedBy, ids: [row.requestedBy, ...keys] };
  const key = objectKey(tenant.id, row.id);
  const bucket = bucketOf(env, tenant);
  const archive = await ArchiveWriter.open(bucket, key);
  const files: (ArchivedFile & { rows?: number })[] = [];
  const rows = () => files.reduce((n, f) => n + (f.rows ?? 0), 0);
  // At most once a second: an archive of many small objects would otherwise write a row per object.
  let reported = 0;
  const progress = async (current: string) => {
    if (Date.now() - reported < 1000) return;
    reported = Date.now();
    await db.update(exports).set({ progress: JSON.stringify({ files: files.length, current, rows: rows(), bytes: archive.written }) }).where(eq(exports.id, row.id)).run();
  };
  try {
    const d1 = tenantDatabase(env, tenant);
    for (const [name, pages] of rowSources(env, d1, scope)) {
      await progress(name);
      const counted = { rows: 0 };
      files.push({ ...(await archive.add(name, ndjson(pages, counted), true)), rows: counted.rows });
    }
    for await (const [name, object] of objectSources(env, d1, scope)) {
      await progress(name);
      files.push(await archive.add(name, chunksOf(object), false));
    }
    const manifest = {
      schema_version: EXPORT_SCHEMA_VERSION,
      export_id: row.id,
      tenant_id: tenant.id,
      scope: row.scope,
      ...(row.scope === "me" && { user_id: row.requestedBy }),
      created_at: new Date().toISOString(),
      not_exported: { ...NOT_EXPORTED, ...Object.fromEntries(Object.entries(SECRET_COLUMNS).map(([t, cols]) => [`${t}.${cols.join(",")}`, "secrets, never shown"])) },
      files: files.map((f) => ({ name: f.name, ...(f.rows !== undefined && { rows: f.rows }), bytes: f.bytes, sha256: f.sha256 })),
    };
    await archive.add("manifest.json", once(new TextEncoder().encode(JSON.stringify(manifest, null, 2))), true);
    const bytes = await archive.close();
    const ready = await db
      .update(exports)
      .set({ status: "ready", manifest: JSON.stringify(manifest), objectKey: key, bytes, completedAt: new Date().toISOString(), progress: JSON.stringify({ files: files.length + 1, current: null, rows: rows(), bytes }) })
      .where(eq(exports.id, row.id))
      .returning({ id: exports.id });
    // Deleted while it was being written: its archive goes too.
    if (!ready.length) await bucket.delete(key);
  } catch (err) {
    await archive.abort();
    if (!(err instanceof ArchiveTooLarge)) throw err;
    // Trying again cannot help: the job ends, saying why.
    await db.update(exports).set({ status: "failed", error: `The archive would pass ${MAX_ARCHIVE_BYTES} bytes, the most one export holds` }).where(eq(exports.id, row.id)).run();
  }
}

/** A DLQ'd export: failed, with why. */
export async function failExport(env: Env, message: ExportMessage, error: string): Promise<void> {
  const tenant = await tenantById(env, message.tenant_id);
  if (!tenant) return;
  await tenantDb(env, tenant).update(exports).set({ status: "failed", error: error.slice(0, 500) }).where(and(eq(exports.id, message.export_id), sql`${exports.status} <> 'ready'`)).run();
}

async function* once(bytes: Uint8Array) {
  yield bytes;
}

/** The person's own columns of a table: where the plan says a row names them. */
const personColumns = (table: string) => {
  const t = TENANT_TABLES[table]!.person;
  return [...(t.erase?.by ?? []), ...(t.pseudonymise ?? [])].filter((c) => c !== "event_id");
};

/** The NDJSON files, each a source of pages of rows: the account side, every table, every room's messages. */
function rowSources(env: Env, d1: D1Database, s: Scope): [string, AsyncIterable<unknown[]>][] {
  const sources: [string, AsyncIterable<unknown[]>][] = [];
  if (s.scope === "me") {
    sources.push(["profile.ndjson", single(() => env.CONTROL_DB.prepare("SELECT id, email, name, created_at FROM users WHERE id = ?").bind(s.userId).all())]);
    sources.push(["memberships.ndjson", single(() => env.CONTROL_DB.prepare("SELECT m.tenant_id, t.slug AS tenant_slug, t.name AS tenant_name, m.role, m.projects, m.created_at FROM memberships m JOIN tenants t ON t.id = m.tenant_id WHERE m.user_id = ?").bind(s.userId).all())]);
  } else {
    sources.push(["tenant.ndjson", single(() => env.CONTROL_DB.prepare("SELECT id, slug, name, plan_id, created_at FROM tenants WHERE id = ?").bind(s.tenantId).all())]);
    sources.push(["members.ndjson", single(() => env.CONTROL_DB.prepare("SELECT u.id, u.email, u.name, m.role, m.projects, m.created_at FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.tenant_id = ? ORDER BY u.id").bind(s.tenantId).all())]);
  }
  for (const table of Object.keys(TENANT_TABLES)) {
    if (NOT_EXPORTED[table]) continue;
    const columns = s.scope === "me" ? personColumns(table) : [];
    if (s.scope === "me" && !columns.length) continue;
    sources.push([`tables/${table}.ndjson`, tableRows(d1, table, columns, s.ids)]);
  }
  sources.push(["messages.ndjson", messages(env, d1, s)]);
  return sources;
}

async function* single(read: () => Promise<D1Result<Record<string, unknown>>>): AsyncIterable<unknown[]> {
  yield (await read()).results;
}

/** A table's rows by rowid, a page at a time (the person's only, if `columns`), secrets left out. */
async function* tableRows(d1: D1Database, table: string, columns: string[], ids: string[]): AsyncIterable<unknown[]> {
  const secret = SECRET_COLUMNS[table] ?? [];
  const filter = columns.length ? ` AND (${columns.map((c) => `"${c}" IN (SELECT value FROM json_each(?))`).join(" OR ")})` : "";
  const list = JSON.stringify(ids);
  let after = 0;
  for (;;) {
    const page = await d1
      .prepare(`SELECT rowid AS _rowid, * FROM "${table}" WHERE rowid > ?${filter} ORDER BY rowid LIMIT ${PAGE}`)
      .bind(after, ...columns.map(() => list))
      .all<Record<string, unknown>>();
    if (!page.results.length) return;
    after = page.results.at(-1)!._rowid as number;
    yield page.results.map(({ _rowid, ...r }) => {
      for (const c of secret) delete r[c];
      return r;
    });
    if (page.results.length < PAGE) return;
  }
}

/** Every conversation's messages from its room (a `me` export: only those the person wrote). */
async function* messages(env: Env, d1: D1Database, s: Scope): AsyncIterable<unknown[]> {
  let cursor = "";
  for (;;) {
    const conversations = (await d1.prepare("SELECT id FROM conversations WHERE id > ? ORDER BY id LIMIT 100").bind(cursor).all<{ id: string }>()).results;
    for (const { id } of conversations) {
      const room = roomOf(env, { id: s.tenantId, jurisdiction: s.tenant.jurisdiction }, id);
      let after = 0;
      for (;;) {
        const page = await room.history(after, PAGE, s.scope === "me" ? s.userId : undefined);
        if (!page.length) break;
        after = page.at(-1)!.seq;
        yield page.map((m) => ({ conversation_id: id, ...m }));
        if (page.length < PAGE) break;
      }
    }
    if (conversations.length < 100) return;
    cursor = conversations.at(-1)!.id;
  }
}

/** The stored bytes: every artifact version and knowledge document original (a `me` export: those the person made). */
async function* objectSources(env: Env, d1: D1Database, s: Scope): AsyncIterable<[string, ReadableStream<Uint8Array>]> {
  const mine = s.scope === "me";
  const queries: [string, string][] = [
    [`SELECT rowid AS _rowid, artifact_id || '/v' || version AS name, r2_key FROM artifact_versions WHERE rowid > ?${mine ? " AND created_by = ?" : ""} ORDER BY rowid LIMIT 100`, "artifacts"],
    [`SELECT rowid AS _rowid, id || '/' || name AS name, r2_key FROM knowledge_documents WHERE rowid > ?${mine ? " AND created_by = ?" : ""} ORDER BY rowid LIMIT 100`, "knowledge"],
  ];
  for (const [query, folder] of queries) {
    let after = 0;
    for (;;) {
      const rows = (await d1.prepare(query).bind(after, ...(mine ? [s.userId] : [])).all<{ _rowid: number; name: string; r2_key: string }>()).results;
      for (const row of rows) {
        const object = await bucketOf(env, s.tenant).get(row.r2_key);
        if (object) yield [`${folder}/${row.name.replace(/[^\w.\-/]/g, "_")}`, object.body];
      }
      if (rows.length < 100) break;
      after = rows.at(-1)!._rowid;
    }
  }
}

/** Deletes the tenant's exports past their expiry, archives first. Answers how many. */
export async function expireExports(env: Env, tenant: { id: string; dbBinding: string } & Placed, now = Date.now()): Promise<number> {
  const db: TenantDb = tenantDb(env, tenant);
  const due = await db
    .select({ id: exports.id, objectKey: exports.objectKey })
    .from(exports)
    .where(and(eq(exports.tenantId, tenant.id), lt(exports.expiresAt, new Date(now).toISOString())))
    .limit(100);
  if (!due.length) return 0;
  await bucketOf(env, tenant).delete(due.map((d) => objectKey(tenant.id, d.id)));
  await db.delete(exports).where(inArray(exports.id, due.map((d) => d.id))).run();
  return due.length;
}
