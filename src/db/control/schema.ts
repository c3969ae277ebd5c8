import { createdAt, eventColumns } from "../columns";
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { ROLES } from "../../auth/permissions";

/** Plans set each tenant's limits (enforced from the limits issue on). */
export const plans = sqliteTable("plans", {
  id: text().primaryKey(),
  name: text().notNull(),
  /** The whole tenant's requests per minute. */
  requestsPerMinute: integer().notNull(),
  /** Each member's (and each API key's, unless it carries a lower one) requests per minute. */
  memberRequestsPerMinute: integer().notNull().default(60),
  monthlyTokens: integer().notNull(),
  seats: integer().notNull(),
  projects: integer().notNull(),
  storageBytes: integer().notNull(),
});

export const TENANT_STATUSES = ["active", "suspended", "erasing", "erased"] as const;

/** A tenant, and which of the bound D1 databases is its own. */
export const tenants = sqliteTable("tenants", {
  id: text().primaryKey(),
  slug: text().notNull().unique(),
  name: text().notNull(),
  /** `erasing` once an erasure has begun (no request, job or message reaches it again); `erased` when it ended (the row is its tombstone). */
  status: text({ enum: TENANT_STATUSES }).notNull().default("active"),
  planId: text().notNull().references(() => plans.id),
  dbBinding: text().notNull().unique(),
  /** Chosen at signup: its database comes from this jurisdiction's pool. */
  jurisdiction: text({ enum: ["default", "eu"] }).notNull().default("default"),
  createdAt: createdAt(),
  updatedAt: createdAt(),
});

/**
 * The pool of tenant databases: every `TENANT_DB_NNNN` binding that is provisioned and
 * migrated, and the tenant it belongs to once one signs up (NULL while free).
 */
export const tenantDatabases = sqliteTable("tenant_databases", {
  binding: text().primaryKey(),
  tenantId: text().unique(),
  migration: text().notNull(),
  /** Where the database was created (from its binding's name): a tenant takes one from its own jurisdiction's pool. */
  jurisdiction: text({ enum: ["default", "eu"] }).notNull().default("default"),
  /** The shard (a Worker) that binds the database: only that Worker can open it, so its tenant's requests go there. */
  shard: text().notNull().default("s1"),
  registeredAt: createdAt(),
  assignedAt: text(),
});

/**
 * Every tenant a person has belonged to, kept when the membership ends: their rows stay in that
 * tenant's database, so erasing them must reach it. Written by a trigger on memberships' insert
 * (migration 0009), so no path that adds a member can leave it out.
 */
export const memberTenants = sqliteTable(
  "member_tenants",
  {
    userId: text().notNull(),
    tenantId: text().notNull(),
    firstJoinedAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.tenantId] }), index("member_tenants_tenant_idx").on(t.tenantId)],
);

/** Custom hostnames a platform operator verified and attached to a tenant. */
export const hostnames = sqliteTable(
  "hostnames",
  {
    hostname: text().primaryKey(),
    tenantId: text().notNull().references(() => tenants.id),
    verifiedAt: text().notNull(),
    createdAt: createdAt(),
  },
  (t) => [index("hostnames_tenant_idx").on(t.tenantId)],
);

/** Users are global; memberships give them a role in a tenant. */
export const users = sqliteTable("users", {
  id: text().primaryKey(),
  email: text().notNull().unique(),
  name: text().notNull(),
  passwordHash: text().notNull(),
  createdAt: createdAt(),
});

export const memberships = sqliteTable(
  "memberships",
  {
    tenantId: text().notNull().references(() => tenants.id),
    userId: text().notNull().references(() => users.id),
    role: text({ enum: ROLES }).notNull(),
    /** JSON array of the project ids the member is limited to; NULL reaches every project (owners and admins always do). */
    projects: text(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.userId] }), index("memberships_user_idx").on(t.userId)],
);

export const invitations = sqliteTable(
  "invitations",
  {
    id: text().primaryKey(),
    tenantId: text().notNull().references(() => tenants.id),
    email: text().notNull(),
    role: text({ enum: ROLES }).notNull(),
    /** The projects the membership it makes will be limited to (JSON array), or NULL for every project. */
    projects: text(),
    tokenHash: text().notNull(),
    invitedBy: text().notNull(),
    expiresAt: text().notNull(),
    acceptedAt: text(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("invitations_token_idx").on(t.tokenHash), index("invitations_tenant_idx").on(t.tenantId, t.id)],
);

export const apiKeys = sqliteTable(
  "api_keys",
  {
    id: text().primaryKey(),
    tenantId: text().notNull().references(() => tenants.id),
    name: text().notNull(),
    prefix: text().notNull(),
    keyHash: text().notNull(),
    /** JSON array of permissions. */
    scopes: text().notNull(),
    /** The creator's role when the key was made: the ceiling of what the key may do. */
    role: text({ enum: ROLES }).notNull(),
    createdBy: text().notNull(),
    expiresAt: text(),
    /** The key's own requests per minute, below its plan's per-member limit; NULL uses that limit. */
    rateLimitPerMinute: integer(),
    lastUsedAt: text(),
    revokedAt: text(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("api_keys_hash_idx").on(t.keyHash), index("api_keys_tenant_idx").on(t.tenantId, t.id)],
);

/** A login's chain of refresh tokens; reuse of any spent token revokes the whole family. */
export const refreshTokenFamilies = sqliteTable(
  "refresh_token_families",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    userId: text().notNull(),
    revokedAt: text(),
    revokedReason: text(),
    createdAt: createdAt(),
  },
  (t) => [index("rtf_member_idx").on(t.tenantId, t.userId)],
);

export const refreshTokens = sqliteTable(
  "refresh_tokens",
  {
    id: text().primaryKey(),
    familyId: text().notNull().references(() => refreshTokenFamilies.id),
    tokenHash: text().notNull(),
    expiresAt: text().notNull(),
    usedAt: text(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("refresh_tokens_hash_idx").on(t.tokenHash), index("refresh_tokens_family_idx").on(t.familyId)],
);

/** Every movement of a tenant's prepaid credit: grants (+) and model-call debits (−), in micro-dollars. */
export const creditLedger = sqliteTable(
  "credit_ledger",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    amountMicros: integer().notNull(),
    kind: text({ enum: ["grant", "debit"] }).notNull(),
    reason: text().notNull(),
    /** What the entry is for: a usage event, a message, an operator's note. */
    reference: text(),
    createdAt: createdAt(),
  },
  (t) => [
    index("credit_ledger_tenant_idx").on(t.tenantId, t.id),
    // A debit names what it pays for; naming it twice is a retry, and must not charge twice.
    uniqueIndex("credit_ledger_debit_reference").on(t.tenantId, t.reference).where(sql`kind = 'debit' AND reference IS NOT NULL`),
  ],
);

/** Each tenant's balance, moved only by atomic increments written in the same batch as the ledger entry. */
export const creditBalances = sqliteTable("credit_balances", {
  tenantId: text().primaryKey(),
  balanceMicros: integer().notNull().default(0),
});

/**
 * What happened to an account that its owner should be able to see, whichever tenant it happened
 * in: failed logins, failed and successful invitation acceptances. Kept 90 days.
 */
export const securityEvents = sqliteTable(
  "security_events",
  {
    id: text().primaryKey(),
    userId: text().notNull(),
    tenantId: text().notNull(),
    kind: text({ enum: ["login_failed", "invitation_accept_failed", "invitation_accepted"] }).notNull(),
    clientAddress: text(),
    createdAt: createdAt(),
  },
  (t) => [index("security_events_user_idx").on(t.userId, t.id)],
);

/**
 * Events of changes made in the control database that belong to one tenant (its memberships).
 * Each is written in the batch that makes its change, then relayed (same id) into the tenant's own
 * outbox, where webhooks pick it up; `relayed_at` marks the copy. Relayed rows are kept 7 days.
 */
export const controlOutbox = sqliteTable(
  "outbox",
  {
    ...eventColumns(),
    relayedAt: text(),
  },
  (t) => [index("outbox_unrelayed_idx").on(t.tenantId, t.id).where(sql`relayed_at IS NULL`), index("outbox_created_idx").on(t.createdAt)],
);

/**
 * An erasure of a person (`user`) or a tenant, carried out store by store by the compliance queue's
 * consumer (src/compliance/erasure.ts). `inventory` is what was found before anything was deleted
 * (so a resumed job reports the same counts); `progress` holds each store's outcome as it finishes;
 * `receipt` is the signed JWS once completed.
 */
export const erasures = sqliteTable(
  "erasures",
  {
    id: text().primaryKey(),
    subject: text({ enum: ["user", "tenant"] }).notNull(),
    /** The erased user's or tenant's id: a random id, kept so the receipt can name what it covers. */
    subjectId: text().notNull(),
    requestedBy: text({ enum: ["platform", "subject"] }).notNull(),
    status: text({ enum: ["queued", "running", "completed", "failed"] }).notNull().default("queued"),
    inventory: text(),
    progress: text().notNull().default("{}"),
    receipt: text(),
    /** SHA-256 of the token the subject was given to fetch their receipt (they have no account by then). */
    receiptTokenHash: text(),
    error: text(),
    createdAt: createdAt(),
    startedAt: text(),
    completedAt: text(),
  },
  (t) => [uniqueIndex("erasures_subject").on(t.subject, t.subjectId)],
);

/**
 * A rollout of the tenant schema over the pool's databases (issue 16): the canary databases first,
 * then the rest, a few at a time, driven by the MigrationRunner Durable Object. Where each database
 * is lives in `tenant_databases.migration`; a failure stops the rollout and is recorded here. At most
 * one rollout is running or paused (a partial unique index, migration 0010).
 */
export const migrationRollouts = sqliteTable("migration_rollouts", {
  id: text().primaryKey(),
  target: text().notNull(),
  /** How many databases (the first by binding) go first; the rest wait until they are all done. */
  canary: integer().notNull().default(0),
  /** The shard whose databases it migrates: each shard's Worker binds only its own. */
  shard: text().notNull().default("s1"),
  status: text({ enum: ["running", "paused", "failed", "completed"] }).notNull().default("running"),
  /** Databases registered when the rollout started. */
  total: integer().notNull(),
  failedBinding: text(),
  failedMigration: text(),
  failedStatement: text(),
  error: text(),
  createdAt: createdAt(),
  updatedAt: createdAt(),
  completedAt: text(),
});
