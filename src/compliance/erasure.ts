import { and, eq, inArray, sql } from "drizzle-orm";
import { signDocument } from "../auth/tokens";
import { apiKeys, erasures, hostnames, memberships, memberTenants, refreshTokenFamilies, tenantDatabases, tenants, users } from "../db/control/schema";
import { BY_ID_MS, publishTenant } from "../db/directory";
import { insertWhere } from "../db/insert-where";
import { MEMBERSHIP_CACHE_TTL_MS } from "../auth/membership";
import { controlDb, type Jurisdiction, tenantDatabase, tenantDb } from "../db/router";
import { auditLog, knowledgeDocuments } from "../db/tenant/schema";
import { type Actor, auditInsert } from "../db/audit";
import { deleteDocumentRows } from "../knowledge/store";
import { type Env, loadConfig } from "../env";
import { sha256Hex } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { createLogger } from "../lib/log";
import { LIMITER_KEYS } from "../limits/rate-limit";
import { vectorStore } from "../providers/vectors";
import { roomOf } from "../conversations/sockets";
import { ownShard } from "../shards/shards";
import { delegateInventory, delegateStep } from "./delegation";
import { bucketOf, type Placed } from "../tenants/residency";
import { countOperations, type Person, tenantOperations, controlOperations, tombstonesFor } from "./person";
import { CONTROL_TABLES, RESIDUAL_COPY_DAYS, TENANT_TABLES } from "./plan";

export type ErasureRow = typeof erasures.$inferSelect;

/** The compliance queue's message for an erasure: which job; it carries nothing else. */
export interface ErasureMessage {
  v: 1;
  kind: "erasure";
  erasure_id: string;
}

/** One store's outcome, as the receipt lists it. */
export interface StoreOutcome {
  store: "control_db" | "tenant_db" | "conversation_rooms" | "rate_limiters" | "r2" | "vectors" | "kv" | "durable_objects" | "pool";
  tenant_id?: string;
  table?: string;
  deleted: number;
  pseudonymised: number;
  note?: string;
}

/** Each step's state in `progress`: done or not, what it changed so far, and where a paged step is. */
export interface StepState {
  done: boolean;
  deleted: number;
  pseudonymised: number;
  cursor?: string;
  /** When it was done (ms). */
  doneAt?: number;
}

export interface TenantRef {
  id: string;
  dbBinding: string;
  /** Where its objects and rooms are; inventories written before residency lack it (then "default", where those were made). */
  jurisdiction?: Jurisdiction;
  /** The shard whose Worker binds its database: its part of a person's erasure runs there (src/compliance/delegation.ts). */
  shard?: string;
}

/** What a person's steps in a tenant need to know of it: its upload policy and the events that name them. */
export type TenantPart = TenantRef & { uploads: "keep" | "erase"; eventIds: string[] };

/** A tenant of a person's inventory: its part, with the counts of what the steps will change. */
export type PersonTenant = TenantPart & { counts: Record<string, Counts> };

const placed = (t: TenantRef): Placed => ({ jurisdiction: t.jurisdiction ?? "default" });

/** What a person's erasure found before it changed anything. */
interface PersonInventory {
  kind: "user";
  email: string;
  keyIds: string[];
  familyIds: string[];
  tenants: PersonTenant[];
  control: Record<string, Counts>;
}

/** What a tenant's erasure found before it changed anything. */
interface TenantInventory {
  kind: "tenant";
  tenant: TenantRef & { slug: string };
  hosts: string[];
  limiters: string[];
  channelAccounts: string[];
  tables: Record<string, number>;
  control: Record<string, number>;
}

type Counts = { deleted: number; pseudonymised: number };
type Inventory = PersonInventory | TenantInventory;

const DAY_MS = 86_400_000;
/** Conversations whose rooms one slice of a step visits; R2 keys one list returns. */
const PAGE = 50;
const R2_PAGE = 1000;
const log = createLogger({ component: "erasure" });

// ---- Asking ------------------------------------------------------------------------------------

/**
 * Asks for a person's erasure. A sole owner of a tenant that is not itself erased cannot be erased
 * (the tenant would be left without anyone who may act for it): 409 naming those tenants. Asking
 * again answers the existing job. The subject (asking for themselves) gets a token to fetch the
 * receipt with, since their account will be gone.
 */
export async function requestPersonErasure(env: Env, userId: string, requestedBy: "platform" | "subject"): Promise<{ erasure: ErasureRow; receiptToken: string | null }> {
  const db = controlDb(env);
  const existing = await db.select().from(erasures).where(and(eq(erasures.subject, "user"), eq(erasures.subjectId, userId))).get();
  if (existing) return { erasure: await resumeIfFailed(env, existing), receiptToken: null };
  const user = await db.select({ id: users.id }).from(users).where(eq(users.id, userId)).get();
  if (!user) throw new ApiError("NOT_FOUND", `No user ${userId}`);
  const owned = await db
    .select({ tenantId: memberships.tenantId, slug: tenants.slug })
    .from(memberships)
    .innerJoin(tenants, eq(tenants.id, memberships.tenantId))
    .where(
      and(
        eq(memberships.userId, userId),
        eq(memberships.role, "owner"),
        sql`${tenants.status} NOT IN ('erasing', 'erased')`,
        sql`NOT EXISTS (SELECT 1 FROM memberships o WHERE o.tenant_id = ${memberships.tenantId} AND o.role = 'owner' AND o.user_id <> ${userId})`,
      ),
    );
  if (owned.length) {
    throw new ApiError("CONFLICT", `The only owner of ${owned.map((o) => o.slug).join(", ")} cannot be erased: make another member an owner, or erase the tenant first`, {
      errors: [{ in: "body", field: "user_id", message: `sole owner of ${owned.map((o) => o.tenantId).join(", ")}` }],
    });
  }
  const receiptToken = requestedBy === "subject" ? `ert_${crypto.randomUUID().replaceAll("-", "")}` : null;
  const row = await db
    .insert(erasures)
    .values({ id: newId("era"), subject: "user", subjectId: userId, requestedBy, receiptTokenHash: receiptToken ? await sha256Hex(receiptToken) : null })
    .onConflictDoNothing()
    .returning()
    .get();
  if (!row) return { erasure: (await db.select().from(erasures).where(and(eq(erasures.subject, "user"), eq(erasures.subjectId, userId))).get())!, receiptToken: null };
  await erasureQueue(env, "user").send({ v: 1, kind: "erasure", erasure_id: row.id } satisfies ErasureMessage);
  return { erasure: row, receiptToken };
}

/**
 * Asks for a tenant's erasure: it must be suspended first (409 otherwise). From this moment the
 * tenant is `erasing`: its hosts answer as unknown, and queue messages for it are dropped.
 */
export async function requestTenantErasure(env: Env, tenantId: string): Promise<ErasureRow> {
  const db = controlDb(env);
  const existing = await db.select().from(erasures).where(and(eq(erasures.subject, "tenant"), eq(erasures.subjectId, tenantId))).get();
  if (existing) return resumeIfFailed(env, existing);
  const id = newId("era");
  const [marked] = await db.batch([
    db
      .update(tenants)
      .set({ status: "erasing", updatedAt: new Date().toISOString() })
      .where(and(eq(tenants.id, tenantId), eq(tenants.status, "suspended")))
      .returning({ id: tenants.id }),
    insertWhere(db, erasures, { id, subject: "tenant", subjectId: tenantId, requestedBy: "platform" }, sql`changes() > 0`),
  ]);
  if (!marked.length) {
    const tenant = await db.select({ status: tenants.status }).from(tenants).where(eq(tenants.id, tenantId)).get();
    if (!tenant) throw new ApiError("NOT_FOUND", `No tenant ${tenantId}`);
    throw new ApiError("CONFLICT", `The tenant is ${tenant.status}: suspend it first, so nothing runs for it while it is erased`);
  }
  await publishTenant(env, tenantId);
  await env.COMPLIANCE_QUEUE.send({ v: 1, kind: "erasure", erasure_id: id } satisfies ErasureMessage);
  return (await db.select().from(erasures).where(eq(erasures.id, id)).get())!;
}

/**
 * Where an erasure's job runs. A person's spans tenants on every shard, so it runs on the router,
 * which reaches them all: a shard (asked through DELETE /v1/me on one of its tenants) queues it on
 * the router's compliance queue. A tenant's runs on the tenant's own shard.
 */
function erasureQueue(env: Env, subject: ErasureRow["subject"]): Queue {
  return subject === "user" && env.ROUTER_COMPLIANCE_QUEUE ? env.ROUTER_COMPLIANCE_QUEUE : env.COMPLIANCE_QUEUE;
}

/** A failed job asked for again goes on from its progress. */
async function resumeIfFailed(env: Env, job: ErasureRow): Promise<ErasureRow> {
  if (job.status !== "failed") return job;
  const resumed = await controlDb(env).update(erasures).set({ status: "running", error: null }).where(and(eq(erasures.id, job.id), eq(erasures.status, "failed"))).returning().get();
  if (resumed) await erasureQueue(env, job.subject).send({ v: 1, kind: "erasure", erasure_id: job.id } satisfies ErasureMessage);
  return resumed ?? job;
}

export async function findErasure(env: Env, id: string): Promise<ErasureRow> {
  const row = await controlDb(env).select().from(erasures).where(eq(erasures.id, id)).get();
  if (!row) throw new ApiError("NOT_FOUND", `No erasure ${id}`);
  return row;
}

/** The erasure a subject's receipt token names (they have no account any more), or 404. */
export async function erasureByToken(env: Env, id: string, token: string): Promise<ErasureRow> {
  const row = await controlDb(env).select().from(erasures).where(eq(erasures.id, id)).get();
  if (!row?.receiptTokenHash || row.receiptTokenHash !== (await sha256Hex(token))) throw new ApiError("NOT_FOUND", `No erasure ${id}`);
  return row;
}

// ---- Carrying it out ---------------------------------------------------------------------------

export interface Step {
  name: string;
  run(state: StepState): Promise<void>;
  /** When the step may start (ms): a cache elsewhere must first forget what the job changed. */
  notBefore?: () => number;
}

/**
 * Works on an erasure for about COMPLIANCE_SLICE_MS (at least one step), step by step from its
 * saved progress: a job killed midway and run again redoes at most the step it was in (every step
 * can be repeated), and reports the counts its inventory took before anything changed. Answers
 * whether it finished; if not, its next slice is queued.
 */
export async function workOnErasure(env: Env, id: string): Promise<"completed" | "continues" | "gone"> {
  const db = controlDb(env);
  let job = await db.select().from(erasures).where(eq(erasures.id, id)).get();
  if (!job) return "gone";
  if (job.status === "completed") return "completed";
  const started = Date.now();
  if (!job.inventory) {
    const inventory = job.subject === "user" ? await personInventory(env, job) : await tenantInventory(env, job);
    job = (await db
      .update(erasures)
      .set({ inventory: JSON.stringify(inventory), status: "running", startedAt: new Date().toISOString() })
      .where(and(eq(erasures.id, id), sql`${erasures.inventory} IS NULL`))
      .returning()
      .get()) ?? (await db.select().from(erasures).where(eq(erasures.id, id)).get())!;
  }
  const inventory = JSON.parse(job.inventory!) as Inventory;
  const progress = JSON.parse(job.progress) as Record<string, StepState>;
  const steps = inventory.kind === "user" ? personSteps(env, job, inventory, progress) : tenantSteps(env, job, inventory);
  const slice = loadConfig(env).COMPLIANCE_SLICE_MS;
  let worked = false;
  for (const step of steps) {
    const state = progress[step.name] ?? { done: false, deleted: 0, pseudonymised: 0 };
    progress[step.name] = state;
    if (state.done) continue;
    if ((worked && Date.now() - started >= slice) || (step.notBefore?.() ?? 0) > Date.now()) break;
    worked = true;
    await step.run(state);
    if (state.done) state.doneAt = Date.now();
    await db.update(erasures).set({ progress: JSON.stringify(progress) }).where(eq(erasures.id, id)).run();
    log.info("erasure.step", { erasure_id: id, step: step.name, done: state.done, deleted: state.deleted, pseudonymised: state.pseudonymised });
    if (!state.done) break;
  }
  if (steps.every((s) => progress[s.name]?.done)) {
    await finish(env, job, inventory, progress);
    return "completed";
  }
  await env.COMPLIANCE_QUEUE.send({ v: 1, kind: "erasure", erasure_id: id } satisfies ErasureMessage, { delaySeconds: waitSeconds(steps, progress) });
  return "continues";
}

/** How long the next slice waits: until its next step may start. */
function waitSeconds(steps: Step[], progress: Record<string, StepState>): number {
  const next = steps.find((s) => !progress[s.name]?.done);
  return Math.max(0, Math.ceil(((next?.notBefore?.() ?? 0) - Date.now()) / 1000));
}

async function personInventory(env: Env, job: ErasureRow): Promise<PersonInventory> {
  const db = controlDb(env);
  const userId = job.subjectId;
  const [user, keys, families, member] = await db.batch([
    db.select({ email: users.email }).from(users).where(eq(users.id, userId)),
    db.select({ id: apiKeys.id }).from(apiKeys).where(eq(apiKeys.createdBy, userId)),
    db.select({ id: refreshTokenFamilies.id }).from(refreshTokenFamilies).where(eq(refreshTokenFamilies.userId, userId)),
    // Every tenant they ever belonged to: a former member's rows are still in its database.
    db
      .select({ id: tenants.id, dbBinding: tenants.dbBinding, jurisdiction: tenants.jurisdiction, shard: tenantDatabases.shard })
      .from(memberTenants)
      .innerJoin(tenants, eq(tenants.id, memberTenants.tenantId))
      .leftJoin(tenantDatabases, eq(tenantDatabases.binding, tenants.dbBinding))
      .where(and(eq(memberTenants.userId, userId), sql`${tenants.status} NOT IN ('erasing', 'erased')`)),
  ]);
  const person: Person = { userId, email: user[0]?.email ?? "", keyIds: keys.map((k) => k.id), familyIds: families.map((f) => f.id), tombstones: tombstonesFor(job.id) };
  const found: PersonInventory["tenants"] = [];
  for (const row of member) {
    const t = { ...row, shard: row.shard ?? undefined };
    // A tenant on another shard takes its own inventory: only that shard's Worker opens its database.
    found.push(elsewhere(env, t) ? await delegateInventory(env, job.id, person, t) : await personTenantInventory(env, t, person));
  }
  const controlEvents = (await env.CONTROL_DB.prepare("SELECT id FROM outbox WHERE subject_id = ?").bind(userId).all<{ id: string }>()).results.map((r) => r.id);
  return { kind: "user", email: person.email, keyIds: person.keyIds, familyIds: person.familyIds, tenants: found, control: await countOperations(env.CONTROL_DB, controlOperations(env.CONTROL_DB, person, controlEvents)) };
}

/** What a person left in one tenant's database: the tenant's upload policy, their events, the counts of what will change. */
export async function personTenantInventory(env: Env, t: TenantRef, person: Person): Promise<PersonTenant> {
  const d1 = tenantDatabase(env, t);
  const [settings, events] = await d1.batch<{ uploads_on_erasure?: string; id?: string }>([
    d1.prepare("SELECT uploads_on_erasure FROM compliance_settings LIMIT 1"),
    d1.prepare("SELECT id FROM outbox WHERE subject_id = ?").bind(person.userId),
  ]);
  const eventIds = events!.results.map((r) => r.id!);
  const counts = await countOperations(d1, tenantOperations(d1, person, eventIds));
  return { ...t, uploads: settings!.results[0]?.uploads_on_erasure === "erase" ? "erase" : "keep", eventIds, counts };
}

/** Whether a tenant's database is on another shard than this Worker's. */
const elsewhere = (env: Env, t: TenantRef) => t.shard !== undefined && t.shard !== ownShard(env);

const personOf = (job: ErasureRow, inv: PersonInventory): Person => ({ userId: job.subjectId, email: inv.email, keyIds: inv.keyIds, familyIds: inv.familyIds, tombstones: tombstonesFor(job.id) });

/**
 * A person's erasure: their account; then in each tenant their rooms, objects and rows; then their
 * rate limiters (last: a read may still pass on an isolate's cached membership for 10 s, and count).
 */
function personSteps(env: Env, job: ErasureRow, inv: PersonInventory, progress: Record<string, StepState>): Step[] {
  const person = personOf(job, inv);
  const steps: Step[] = [];
  // The account first: from then on every write with their credentials is refused (writes read the
  // membership fresh), so nothing new names them in a tenant after its rows step.
  steps.push({
    name: "control",
    run: async (state) => {
      const controlEvents = (await env.CONTROL_DB.prepare("SELECT id FROM outbox WHERE subject_id = ?").bind(person.userId).all<{ id: string }>()).results.map((r) => r.id);
      const ops = controlOperations(env.CONTROL_DB, person, controlEvents);
      // Rows refer to the user (memberships) and to families (tokens): the checks wait for the end of the transaction.
      if (ops.length) await env.CONTROL_DB.batch([env.CONTROL_DB.prepare("PRAGMA defer_foreign_keys = on"), ...ops.map((o) => o.apply)]);
      state.done = true;
    },
  });
  // Each tenant's steps; the ones that wait for cached memberships to expire go after all the rest.
  const waiting: Step[] = [];
  for (const t of inv.tenants) {
    const own = personTenantSteps(env, job, person, t, progress);
    // Another shard's tenant: the same steps, each run by that shard's Worker from the state kept here.
    const theirs = elsewhere(env, t) ? own.map((step) => ({ ...step, run: (state: StepState) => delegateStep(env, job.id, person, t, step.name, state) })) : own;
    for (const step of theirs) (step.notBefore ? waiting : steps).push(step);
  }
  steps.push(...waiting);
  steps.push({
    name: "rate_limiters",
    notBefore: () => (progress.control?.doneAt ?? 0) + MEMBERSHIP_CACHE_TTL_MS + 1000,
    run: async (state) => {
      const K = LIMITER_KEYS;
      // The account's own; each tenant's limiters of theirs go in its `limiters` step (on its shard).
      state.deleted = await eraseObjects(env.RATE_LIMITER, [K.accountFailures(await sha256Hex(person.email)), ...person.keyIds.map(K.apiKey)]);
      state.done = true;
    },
  });
  return steps;
}

/**
 * A person's part in one tenant: their rooms' messages, their objects, their rows, and (last, once
 * cached memberships have expired) the tenant's rate limiters of theirs. Run by the Worker that
 * binds the tenant's database: this one, or its shard's for a delegated step.
 */
export function personTenantSteps(env: Env, job: ErasureRow, person: Person, t: TenantPart, progress: Record<string, StepState>): Step[] {
  return [
    {
      name: `tenant:${t.id}:rooms`,
      run: (state) =>
        eachRoom(env, t, state, async (room) => {
          state.pseudonymised += await room.eraseAuthor(person.userId, person.tombstones.user);
        }),
    },
    { name: `tenant:${t.id}:objects`, run: (state) => erasePersonObjects(env, t, person, state) },
    {
      name: `tenant:${t.id}:rows`,
      run: async (state) => {
        const d1 = tenantDatabase(env, t);
        const ops = tenantOperations(d1, person, t.eventIds);
        // The tenant's admins see that a member was erased (by the tombstone; once, however often the step runs).
        const actor: Actor = job.requestedBy === "platform" ? { type: "platform" } : { type: "user", id: person.tombstones.user };
        const entry = { action: "member.erased", resourceType: "member", resourceId: person.tombstones.user, details: { erasure_id: job.id, requested_by: job.requestedBy } };
        const once = sql`NOT EXISTS (SELECT 1 FROM ${auditLog} WHERE ${auditLog.requestId} = ${job.id} AND ${auditLog.action} = 'member.erased')`;
        const audit = auditInsert(tenantDb(env, t), t.id, actor, job.id, entry, once).toSQL();
        await d1.batch([...ops.map((o) => o.apply), d1.prepare(audit.sql).bind(...audit.params)]);
        state.done = true;
      },
    },
    {
      name: `tenant:${t.id}:limiters`,
      notBefore: () => (progress.control?.doneAt ?? 0) + MEMBERSHIP_CACHE_TTL_MS + 1000,
      run: async (state) => {
        const K = LIMITER_KEYS;
        state.deleted = await eraseObjects(env.RATE_LIMITER, [K.member(t.id, person.userId), K.streams(t.id, { userId: person.userId }), ...person.keyIds.map((keyId) => K.streams(t.id, { keyId }))]);
        state.done = true;
      },
    },
  ];
}

/**
 * The person's exports (they hold their data) always go; their uploads go only where the tenant's
 * policy says `erase` — otherwise they stay as the tenant's content, no longer naming them. The rows
 * of erased uploads go in the same step, before the rows step pseudonymises the rest.
 */
async function erasePersonObjects(env: Env, t: TenantPart, person: Person, state: StepState) {
  const d1 = tenantDatabase(env, t);
  const keys = (await d1.prepare("SELECT object_key AS k FROM exports WHERE requested_by = ? AND object_key IS NOT NULL").bind(person.userId).all<{ k: string }>()).results.map((r) => r.k);
  if (t.uploads === "erase") {
    const by = person.userId;
    const versions = await d1.prepare("SELECT r2_key AS k FROM artifact_versions WHERE artifact_id IN (SELECT id FROM artifacts WHERE created_by = ?)").bind(by).all<{ k: string }>();
    keys.push(...versions.results.map((r) => r.k));
    const removed = await d1.batch([
      d1.prepare("DELETE FROM artifact_versions WHERE artifact_id IN (SELECT id FROM artifacts WHERE created_by = ?)").bind(by),
      d1.prepare("DELETE FROM artifacts WHERE created_by = ?").bind(by),
    ]);
    state.deleted += removed.reduce((n, r) => n + (r.meta.changes ?? 0), 0);
    // Documents go as a deletion through the API would: out of the full-text index, their chunks, a document.deleted event each.
    const db = tenantDb(env, t);
    for (const doc of await db.select().from(knowledgeDocuments).where(and(eq(knowledgeDocuments.tenantId, t.id), eq(knowledgeDocuments.createdBy, by)))) {
      const gone = await deleteDocumentRows(db, doc, []);
      if (!gone) continue;
      if (gone.chunkIds.length) await vectorStore(env).deleteByIds(t.id, gone.chunkIds);
      keys.push(doc.r2Key);
      state.deleted += 1 + gone.chunkIds.length;
    }
  }
  for (let i = 0; i < keys.length; i += R2_PAGE) await bucketOf(env, placed(t)).delete(keys.slice(i, i + R2_PAGE));
  state.deleted += keys.length;
  state.done = true;
}

async function tenantInventory(env: Env, job: ErasureRow): Promise<TenantInventory> {
  const db = controlDb(env);
  const tenant = (await db.select().from(tenants).where(eq(tenants.id, job.subjectId)).get())!;
  const ref = { id: tenant.id, dbBinding: tenant.dbBinding, jurisdiction: tenant.jurisdiction, slug: tenant.slug };
  const d1 = tenantDatabase(env, ref);
  const names = Object.keys(TENANT_TABLES);
  const counted = await d1.batch<{ n: number }>(names.map((n) => d1.prepare(`SELECT count(*) AS n FROM "${n}"`)));
  const tables = Object.fromEntries(names.map((n, i) => [n, counted[i]!.results[0]!.n]));
  const [members, keys, hosts] = await env.CONTROL_DB.batch<{ id: string }>([
    env.CONTROL_DB.prepare("SELECT user_id AS id FROM memberships WHERE tenant_id = ?").bind(tenant.id),
    env.CONTROL_DB.prepare("SELECT id FROM api_keys WHERE tenant_id = ?").bind(tenant.id),
    env.CONTROL_DB.prepare("SELECT hostname AS id FROM hostnames WHERE tenant_id = ?").bind(tenant.id),
  ]);
  const [endpoints, accounts] = await d1.batch<{ id: string }>([d1.prepare("SELECT id FROM webhook_endpoints"), d1.prepare("SELECT id FROM channel_accounts")]);
  const ids = (r: D1Result<{ id: string }>) => r.results.map((x) => x.id);
  const K = LIMITER_KEYS;
  const limiters = [
    K.tenant(tenant.id),
    ...ids(members!).flatMap((userId) => [K.member(tenant.id, userId), K.streams(tenant.id, { userId })]),
    ...ids(keys!).flatMap((keyId) => [K.apiKey(keyId), K.streams(tenant.id, { keyId })]),
    ...ids(endpoints!).map((e) => K.webhookEndpoint(tenant.id, e)),
  ];
  // Every control table the tenant's erasure empties, counted in one round trip.
  const erased = Object.keys(CONTROL_TABLES).filter((n) => CONTROL_TABLES[n]!.tenant === "erase");
  const counts = await env.CONTROL_DB.batch<{ n: number }>(erased.map((table) => env.CONTROL_DB.prepare(`SELECT count(*) AS n FROM "${table}" WHERE ${controlScope(table)}`).bind(tenant.id)));
  const control = Object.fromEntries(erased.map((table, i) => [table, counts[i]!.results[0]!.n]));
  return { kind: "tenant", tenant: ref, hosts: [`${tenant.slug}.${loadConfig(env).BASE_DOMAIN}`, ...ids(hosts!)], limiters, channelAccounts: ids(accounts!), tables, control };
}

/** Which of a control table's rows belong to the tenant (bound to its id). */
const controlScope = (table: string) => (table === "refresh_tokens" ? `family_id IN (SELECT id FROM refresh_token_families WHERE tenant_id = ?)` : `tenant_id = ?`);

/** A tenant's erasure: every store it has, its database last, verified empty, then given back to the pool. */
function tenantSteps(env: Env, job: ErasureRow, inv: TenantInventory): Step[] {
  const t = inv.tenant;
  return [
        {
      name: "rooms",
      run: (state) =>
        eachRoom(env, t, state, async (room) => {
          if (await room.erase()) state.deleted++;
        }),
    },
    {
      name: "rate_limiters",
      run: async (state) => {
        state.deleted = await eraseObjects(env.RATE_LIMITER, inv.limiters);
        state.done = true;
      },
    },
    {
      name: "durable_objects",
      run: async (state) => {
        state.deleted = (await eraseObjects(env.PUBLISH_SCHEDULER, [t.id])) + (await eraseObjects(env.PUBLISHER_SANDBOX, inv.channelAccounts));
        state.done = true;
      },
    },
    {
      name: "vectors",
      run: async (state) => {
        const d1 = tenantDatabase(env, t);
        const page = await d1.prepare("SELECT pk, id FROM knowledge_chunks WHERE pk > ? ORDER BY pk LIMIT 1000").bind(Number(state.cursor ?? 0)).all<{ pk: number; id: string }>();
        const rows = page.results;
        // The local index drops the whole namespace at the first call; Vectorize deletes page by page.
        if (rows.length || !state.cursor) await vectorStore(env).eraseNamespace(t.id, rows.map((r) => r.id));
        state.deleted += rows.length;
        state.cursor = String(rows.at(-1)?.pk ?? state.cursor ?? 0);
        state.done = rows.length < 1000;
      },
    },
    {
      name: "r2",
      run: async (state) => {
        const bucket = bucketOf(env, placed(t));
        const listed = await bucket.list({ prefix: `tenants/${t.id}/`, limit: R2_PAGE });
        if (listed.objects.length) await bucket.delete(listed.objects.map((o) => o.key));
        state.deleted += listed.objects.length;
        state.done = !listed.truncated;
      },
    },
    {
      name: "kv",
      run: async (state) => {
        // Already deleted when the erasure was asked for (publishTenant): deleted again, in case a write raced that.
        await Promise.all(inv.hosts.map((host) => env.TENANT_CACHE.delete(`host:${host}`)));
        state.deleted = inv.hosts.length;
        state.done = true;
      },
    },
    {
      name: "control",
      run: async (state) => {
        // Tokens before their families, the rest in any order (none refers to another).
        const tables = Object.keys(CONTROL_TABLES).filter((n) => CONTROL_TABLES[n]!.tenant === "erase");
        await env.CONTROL_DB.batch(tables.map((table) => env.CONTROL_DB.prepare(`DELETE FROM "${table}" WHERE ${controlScope(table)}`).bind(t.id)));
        state.deleted = Object.values(inv.control).reduce((a, b) => a + b, 0);
        state.done = true;
      },
    },
    {
      name: "tenant_db",
      run: async (state) => {
        const d1 = tenantDatabase(env, t);
        // The full-text index keeps external content: it is emptied by its own command, not by deleting the chunks.
        // The tables go in slices, so a large table never makes one huge transaction.
        const [, ...results] = await d1.batch([
          d1.prepare(`INSERT INTO knowledge_chunks_fts (knowledge_chunks_fts) VALUES ('delete-all')`),
          ...Object.keys(TENANT_TABLES).map((n) => d1.prepare(`DELETE FROM "${n}" WHERE rowid IN (SELECT rowid FROM "${n}" LIMIT 5000)`)),
        ]);
        state.deleted += results.reduce((n, r) => n + (r.meta.changes ?? 0), 0);
        state.done = results.every((r) => (r.meta.changes ?? 0) < 5000);
      },
    },
    {
      name: "verify",
      run: async (state) => {
        const left = await rowsLeft(tenantDatabase(env, t));
        if (left.length) throw new Error(`tenant database ${t.dbBinding} still holds rows: ${left.join(", ")}`);
        state.done = true;
      },
    },
    {
      name: "pool",
      // An isolate may hold the tenant by id for BY_ID_MS after it was marked erasing: only then may another tenant get the database.
      notBefore: () => Date.parse(job.createdAt) + BY_ID_MS + 1000,
      run: async (state) => {
        const db = controlDb(env);
        await db.batch([
          db.update(tenantDatabases).set({ tenantId: null, assignedAt: null }).where(and(eq(tenantDatabases.binding, t.dbBinding), eq(tenantDatabases.tenantId, t.id))),
          db
            .update(tenants)
            .set({ status: "erased", slug: `erased-${t.id}`, name: "", dbBinding: `erased:${t.id}`, updatedAt: new Date().toISOString() })
            .where(and(eq(tenants.id, t.id), inArray(tenants.status, ["erasing", "erased"]))),
          db.delete(hostnames).where(eq(hostnames.tenantId, t.id)),
        ]);
        state.done = true;
      },
    },
  ];
}

/**
 * The tables of a tenant database that still hold rows: every table but SQLite's and D1's own, and
 * the full-text index's internal tables (its `docsize` rows, one per indexed chunk, are counted).
 */
export async function rowsLeft(d1: D1Database): Promise<string[]> {
  const tables = await d1.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name <> 'd1_migrations' AND name NOT GLOB '*_fts_data' AND name NOT GLOB '*_fts_idx' AND name NOT GLOB '*_fts_config'`).all<{ name: string }>();
  const counted = await d1.batch<{ n: number }>(tables.results.map((t) => d1.prepare(`SELECT count(*) AS n FROM "${t.name}"`)));
  return tables.results.filter((_, i) => (counted[i]!.results[0]?.n ?? 0) > 0).map((t) => t.name);
}

/** Visits the tenant's conversation rooms a page at a time, from the step's cursor. */
async function eachRoom(env: Env, t: TenantRef, state: StepState, visit: (room: ReturnType<typeof roomOf>) => Promise<void>) {
  const d1 = tenantDatabase(env, t);
  const page = await d1.prepare("SELECT id FROM conversations WHERE id > ? ORDER BY id LIMIT ?").bind(state.cursor ?? "", PAGE).all<{ id: string }>();
  for (const row of page.results) {
    await visit(roomOf(env, { id: t.id, ...placed(t) }, row.id));
    state.cursor = row.id;
  }
  state.done = page.results.length < PAGE;
}

/** Erases the Durable Objects of a namespace by name; answers how many held anything. */
async function eraseObjects(ns: { idFromName(name: string): DurableObjectId; get(id: DurableObjectId): { erase(): Promise<boolean> } }, names: string[]): Promise<number> {
  let held = 0;
  for (const name of names) if (await ns.get(ns.idFromName(name)).erase()) held++;
  return held;
}

/** The receipt, signed once: a job finished twice (a duplicate message) keeps its first. */
async function finish(env: Env, job: ErasureRow, inv: Inventory, progress: Record<string, StepState>) {
  const completedAt = new Date();
  const receipt = {
    type: "erasure_receipt",
    v: 1,
    erasure_id: job.id,
    subject: { type: job.subject, id: job.subjectId },
    requested_by: job.requestedBy,
    requested_at: job.createdAt,
    started_at: job.startedAt,
    completed_at: completedAt.toISOString(),
    residual_copies_expire_at: new Date(completedAt.getTime() + RESIDUAL_COPY_DAYS * DAY_MS).toISOString(),
    residual_copies: "D1 Time Travel and Durable Object point-in-time recovery keep 30 days of history that cannot be switched off; it expires then.",
    ...(inv.kind === "user" && { tombstones: tombstonesFor(job.id), uploads: Object.fromEntries(inv.tenants.map((t) => [t.id, t.uploads])) }),
    stores: outcomes(inv, progress),
  };
  const config = loadConfig(env);
  const jws = await signDocument({ privateKey: config.JWT_PRIVATE_KEY, previousPublicKeys: config.JWT_PREVIOUS_PUBLIC_KEYS, issuer: `https://${config.BASE_DOMAIN}` }, receipt);
  await controlDb(env)
    .update(erasures)
    .set({ status: "completed", receipt: jws, completedAt: receipt.completed_at })
    .where(and(eq(erasures.id, job.id), sql`${erasures.receipt} IS NULL`))
    .run();
}

/** Each store's outcome: the tables' counts from the inventory, the other stores' from their steps. */
function outcomes(inv: Inventory, progress: Record<string, StepState>): StoreOutcome[] {
  const of = (name: string) => progress[name] ?? { deleted: 0, pseudonymised: 0 };
  const list: StoreOutcome[] = [];
  if (inv.kind === "user") {
    for (const [table, c] of Object.entries(inv.control)) list.push({ store: "control_db", table, ...c });
    for (const t of inv.tenants) {
      for (const [table, c] of Object.entries(t.counts)) list.push({ store: "tenant_db", tenant_id: t.id, table, ...c });
      list.push({ store: "conversation_rooms", tenant_id: t.id, deleted: 0, pseudonymised: of(`tenant:${t.id}:rooms`).pseudonymised, note: "messages they wrote: text replaced, author set to the tombstone" });
      list.push({ store: "r2", tenant_id: t.id, deleted: of(`tenant:${t.id}:objects`).deleted, pseudonymised: 0, note: t.uploads === "erase" ? "their exports and uploads" : "their exports (uploads kept as the tenant's content)" });
    }
    list.push({ store: "rate_limiters", deleted: of("rate_limiters").deleted, pseudonymised: 0 });
    return list.filter((o) => o.deleted || o.pseudonymised || !o.table);
  }
  for (const [table, n] of Object.entries(inv.control)) list.push({ store: "control_db", table, deleted: n, pseudonymised: 0 });
  for (const [table, n] of Object.entries(inv.tables)) list.push({ store: "tenant_db", tenant_id: inv.tenant.id, table, deleted: n, pseudonymised: 0 });
  list.push({ store: "conversation_rooms", deleted: of("rooms").deleted, pseudonymised: 0, note: "rooms whose storage was deleted" });
  list.push({ store: "rate_limiters", deleted: of("rate_limiters").deleted, pseudonymised: 0 });
  list.push({ store: "durable_objects", deleted: of("durable_objects").deleted, pseudonymised: 0, note: "the publish scheduler and channel sandboxes" });
  list.push({ store: "vectors", deleted: of("vectors").deleted, pseudonymised: 0 });
  list.push({ store: "r2", deleted: of("r2").deleted, pseudonymised: 0, note: `every object under tenants/${inv.tenant.id}/` });
  list.push({ store: "kv", deleted: of("kv").deleted, pseudonymised: 0, note: "host entries" });
  list.push({ store: "pool", deleted: 0, pseudonymised: 0, note: `database ${inv.tenant.dbBinding} verified empty and returned to the pool` });
  return list;
}

/** A job whose messages ran out of retries: failed, with why (asking again resumes it from its progress). */
export async function failErasure(env: Env, id: string, error: string) {
  await controlDb(env).update(erasures).set({ status: "failed", error: error.slice(0, 500) }).where(and(eq(erasures.id, id), sql`${erasures.status} <> 'completed'`)).run();
}

