/**
 * The erasure plan: what erasing a person, and erasing a tenant, does to every table and every
 * other store the platform writes. A test holds it to the schemas and the bindings: a table, a
 * column that can hold a person's id, or a store that is not classified here fails the suite, so
 * nothing new is written that erasure does not know how to reach. The erasure jobs
 * (src/compliance/erasure.ts) carry it out from this map; the person's data export reads the same
 * columns to find what is theirs.
 */

/**
 * What erasing a person does to a table's rows that name them: rows naming them in `erase.by` are
 * deleted (with the personal columns `erase.with` in them); `pseudonymise` columns are set to the
 * tombstone id where they are the person's and the row — the tenant's content or record — stays;
 * `keep` columns stay as they are for the reason given; `none` says why the table holds nothing
 * personal.
 */
export interface PersonTreatment {
  erase?: { by: string[]; with?: string[] };
  pseudonymise?: string[];
  keep?: { columns: string[]; reason: string };
  /** Text (JSON) columns that may mention the person's id or email inside: those are replaced by the tombstones. */
  rewrite?: string[];
  none?: string;
  /** How the columns name the person, where their names do not say it. */
  note?: string;
}

/** Every column a treatment names. */
export const treatedColumns = (t: PersonTreatment) => [...(t.erase?.by ?? []), ...(t.erase?.with ?? []), ...(t.pseudonymise ?? []), ...(t.keep?.columns ?? []), ...(t.rewrite ?? [])];

/** What erasing a tenant does to a table: every row of the tenant goes, or the reason something stays. */
export type TenantTreatment = "erase" | { keep: string };

export interface TablePlan {
  person: PersonTreatment;
  tenant: TenantTreatment;
}

/** The control database: shared by every tenant. */
export const CONTROL_TABLES: Record<string, TablePlan> = {
  plans: { person: { none: "the platform's plans" }, tenant: { keep: "the platform's plans, shared by every tenant" } },
  tenants: { person: { none: "a tenant's name and slug" }, tenant: { keep: "the row stays as a tombstone (status erased) so its id is never reused and the receipt can name it" } },
  migration_rollouts: { person: { none: "schema rollouts: versions and database bindings" }, tenant: { keep: "names bindings, not tenants" } },
  tenant_databases: { person: { none: "the pool's bookkeeping" }, tenant: { keep: "the database goes back to the pool only after it is verified empty" } },
  hostnames: { person: { none: "a tenant's host names" }, tenant: "erase" },
  users: { person: { erase: { by: ["id"], with: ["email", "password_hash"] } }, tenant: { keep: "people are global; a person who belonged to the tenant is erased on their own request" } },
  memberships: { person: { erase: { by: ["user_id"] } }, tenant: "erase" },
  member_tenants: { person: { erase: { by: ["user_id"] }, note: "the tenants they ever belonged to: read first, to reach each one's database" }, tenant: "erase" },
  invitations: { person: { erase: { by: ["email"] }, pseudonymise: ["invited_by"] }, tenant: "erase" },
  api_keys: { person: { erase: { by: ["created_by"] } }, tenant: "erase" },
  refresh_tokens: { person: { erase: { by: ["family_id"] }, note: "tokens of the person's families" }, tenant: "erase" },
  refresh_token_families: { person: { erase: { by: ["user_id"] } }, tenant: "erase" },
  credit_ledger: { person: { none: "money movements of a tenant" }, tenant: { keep: "financial records are kept for the years the law requires; they hold no personal data" } },
  credit_balances: { person: { none: "a tenant's balance" }, tenant: "erase" },
  security_events: { person: { erase: { by: ["user_id"], with: ["client_address"] } }, tenant: "erase" },
  outbox: { person: { erase: { by: ["subject_id"] }, rewrite: ["data"], note: "member events (with the person's name and email) have the person as their subject" }, tenant: "erase" },
  erasures: {
    person: { keep: { columns: ["subject_id", "requested_by"], reason: "the record of the erasure itself: the erased (random) id its receipt names, and who asked" } },
    tenant: { keep: "the record of the tenant's erasure and its receipt" },
  },
};

/** Each tenant's own database: erasing the tenant empties it, so the tenant treatment is always erase. */
export const TENANT_TABLES: Record<string, TablePlan> = {
  projects: { person: { pseudonymise: ["created_by"] }, tenant: "erase" },
  audit_log: { person: { pseudonymise: ["actor_id"], rewrite: ["resource_id", "details"], note: "the entry stays; the person's id and email in it become the tombstones" }, tenant: "erase" },
  conversations: { person: { pseudonymise: ["created_by"] }, tenant: "erase" },
  live_sockets: { person: { erase: { by: ["user_id", "api_key_id"] } }, tenant: "erase" },
  usage_events: { person: { pseudonymise: ["user_id", "api_key_id"] }, tenant: "erase" },
  usage_daily: { person: { pseudonymise: ["user_id"] }, tenant: "erase" },
  token_quota: { person: { none: "a tenant's monthly counts" }, tenant: "erase" },
  quota_holds: { person: { none: "reservations by call reference" }, tenant: "erase" },
  agents: { person: { pseudonymise: ["created_by"] }, tenant: "erase" },
  prompts: { person: { pseudonymise: ["created_by"] }, tenant: "erase" },
  prompt_versions: { person: { pseudonymise: ["created_by"] }, tenant: "erase" },
  runs: { person: { pseudonymise: ["created_by", "api_key_id"] }, tenant: "erase" },
  outbox: { person: { erase: { by: ["subject_id"] }, rewrite: ["data"], note: "member events (with the person's name and email) have the person as their subject; other events name them by id" }, tenant: "erase" },
  artifacts: { person: { pseudonymise: ["created_by"] }, tenant: "erase" },
  artifact_versions: { person: { pseudonymise: ["created_by"] }, tenant: "erase" },
  knowledge_bases: { person: { pseudonymise: ["created_by"] }, tenant: "erase" },
  knowledge_documents: { person: { pseudonymise: ["created_by"] }, tenant: "erase" },
  knowledge_chunks: { person: { none: "text of the tenant's documents" }, tenant: "erase" },
  webhook_endpoints: { person: { pseudonymise: ["created_by"] }, tenant: "erase" },
  webhook_messages: { person: { erase: { by: ["event_id"] }, rewrite: ["payload"], note: "copies of the person's member events: those whose event is erased from the outbox" }, tenant: "erase" },
  webhook_attempts: { person: { none: "delivery records" }, tenant: "erase" },
  campaigns: { person: { pseudonymise: ["owner_id", "created_by"] }, tenant: "erase" },
  approval_policies: { person: { pseudonymise: ["updated_by"] }, tenant: "erase" },
  posts: { person: { pseudonymise: ["created_by"] }, tenant: "erase" },
  post_revisions: { person: { pseudonymise: ["author_id"] }, tenant: "erase" },
  post_reviews: { person: { pseudonymise: ["reviewer_id"] }, tenant: "erase" },
  post_comments: { person: { pseudonymise: ["author_id", "resolved_by"] }, tenant: "erase" },
  review_links: { person: { pseudonymise: ["created_by"] }, tenant: "erase" },
  channel_accounts: { person: { pseudonymise: ["created_by"] }, tenant: "erase" },
  post_publications: { person: { none: "where a post was published" }, tenant: "erase" },
  personas: { person: { pseudonymise: ["created_by"] }, tenant: "erase" },
  persona_versions: { person: { pseudonymise: ["created_by"] }, tenant: "erase" },
  post_metrics: { person: { none: "counts from the networks" }, tenant: "erase" },
  post_reminders: { person: { none: "which reminders were sent" }, tenant: "erase" },
  ideas: { person: { none: "the model's ideas for a campaign" }, tenant: "erase" },
  exports: { person: { erase: { by: ["requested_by"] }, note: "a person's exports hold their data: the archives in R2 are deleted with the rows" }, tenant: "erase" },
  compliance_settings: { person: { pseudonymise: ["updated_by"] }, tenant: "erase" },
};

/** A column name that can hold a person's id or identity: the coverage test requires each to be treated. */
export const PERSONAL_COLUMN = /^(user_id|created_by|author_id|actor_id|reviewer_id|owner_id|invited_by|email|password_hash|resolved_by|updated_by|api_key_id|client_address|requested_by)$/;

/** A queue's messages carry ids, never personal data, and live minutes. */
const QUEUED = { kind: "queue", person: "messages carry ids only", tenant: "messages that arrive for an erased tenant are dropped" } as const;

/** Every store that is not a table, by its binding, with what erasure does there. */
export const OTHER_STORES: Record<string, { kind: "durable_object" | "r2" | "kv" | "queue" | "d1" | "vectors"; person: string; tenant: string }> = {
  CONTROL_DB: { kind: "d1", person: "the control tables above", tenant: "the control tables above" },
  TENANT_CACHE: { kind: "kv", person: "nothing personal is cached", tenant: "the tenant's host and record entries are deleted" },
  CONVERSATION_ROOM: { kind: "durable_object", person: "messages the person wrote: text replaced, author set to the tombstone", tenant: "every room of the tenant: storage deleted (deleteAll)" },
  RATE_LIMITER: { kind: "durable_object", person: "counters keyed by the person's id: deleted", tenant: "counters keyed by the tenant and its keys: deleted" },
  VECTOR_INDEX: { kind: "durable_object", person: "nothing personal: vectors of the tenant's documents", tenant: "the tenant's namespace: deleted" },
  VECTORIZE: { kind: "vectors", person: "nothing personal: vectors of the tenant's documents", tenant: "the tenant's namespace: deleted" },
  PUBLISH_SCHEDULER: { kind: "durable_object", person: "nothing personal: the next due time", tenant: "storage deleted" },
  PUBLISHER_SANDBOX: { kind: "durable_object", person: "nothing personal: what a local account published", tenant: "storage deleted" },
  ARTIFACTS: { kind: "r2", person: "the person's exports are deleted; their uploads follow the tenant's policy: kept as the tenant's content, or deleted", tenant: "every object under the tenant's prefix: deleted" },
  ARTIFACTS_EU: { kind: "r2", person: "as ARTIFACTS, for EU tenants' objects (src/tenants/residency.ts)", tenant: "as ARTIFACTS: every object under the tenant's prefix, deleted" },
  RUNS_QUEUE: QUEUED,
  SWEEP_QUEUE: { kind: "queue", person: "messages carry tenant ids only", tenant: "an erased tenant is no longer active: a group leaves it out" },
  INGEST_QUEUE: QUEUED,
  WEBHOOKS_QUEUE: QUEUED,
  PUBLISH_QUEUE: QUEUED,
  COMPLIANCE_QUEUE: { kind: "queue", person: "messages carry job ids only", tenant: "a tenant's erasure is itself a message here; its exports' messages are dropped once it is erased" },
};

/** Bindings that hold nothing a tenant or a person wrote, and why. */
export const NOT_STORES: Record<string, string> = {
  ASSETS: "the console's built files, deployed with the Worker",
  MIGRATION_RUNNER: "drives schema rollouts: holds which rollout it is running, never a tenant's data",
};

/** D1 Time Travel and Durable Object point-in-time recovery keep 30 days of history that cannot be switched off. */
export const RESIDUAL_COPY_DAYS = 30;
