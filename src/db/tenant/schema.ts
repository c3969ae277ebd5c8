import { createdAt, eventColumns } from "../columns";
import { index, integer, primaryKey, real, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

/**
 * Tables of a tenant's own database. Each still carries `tenant_id` and every query
 * filters on it: a second wall behind the database router.
 */
export const projects = sqliteTable(
  "projects",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    name: text().notNull(),
    description: text(),
    createdBy: text().notNull(),
    createdAt: createdAt(),
    updatedAt: createdAt(),
  },
  (t) => [index("projects_tenant_idx").on(t.tenantId, t.id)],
);

/** Every write in the tenant, with who did it, to what, and the request it came in. */
export const auditLog = sqliteTable(
  "audit_log",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    actorType: text({ enum: ["user", "api_key", "guest", "platform"] }).notNull(),
    actorId: text(),
    action: text().notNull(),
    resourceType: text().notNull(),
    resourceId: text(),
    requestId: text().notNull(),
    /** JSON object with what changed (never secrets). */
    details: text(),
    createdAt: createdAt(),
  },
  (t) => [index("audit_log_tenant_idx").on(t.tenantId, t.id), index("audit_log_action_idx").on(t.tenantId, t.action, t.id)],
);

/**
 * A conversation's metadata. Its messages live in its ConversationRoom's own SQLite; the room
 * keeps `message_count` (the last seq) and `last_activity_at` current here.
 */
export const conversations = sqliteTable(
  "conversations",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    projectId: text().notNull(),
    title: text(),
    systemPrompt: text(),
    model: text().notNull(),
    retentionDays: integer(),
    messageCount: integer().notNull().default(0),
    lastActivityAt: text(),
    /** JSON array of knowledge base ids its replies are grounded in. */
    knowledgeBaseIds: text().notNull().default("[]"),
    /** The brand persona whose latest version leads its replies' system prompt. */
    personaId: text(),
    createdBy: text().notNull(),
    createdAt: createdAt(),
    updatedAt: createdAt(),
  },
  (t) => [index("conversations_tenant_idx").on(t.tenantId, t.id), index("conversations_project_idx").on(t.tenantId, t.projectId, t.id)],
);

/**
 * The conversation sockets opened in the last few minutes, so that ending someone's access (a
 * removal, a demotion, a revoked key, a suspended tenant) reaches the rooms where they listen.
 * A socket never outlives its credential (`expires_at`), so older rows are dead and are pruned.
 */
export const liveSockets = sqliteTable(
  "live_sockets",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    conversationId: text().notNull(),
    userId: text().notNull(),
    apiKeyId: text(),
    expiresAt: text().notNull(),
  },
  (t) => [index("live_sockets_user_idx").on(t.tenantId, t.userId, t.expiresAt), index("live_sockets_expiry_idx").on(t.tenantId, t.expiresAt)],
);

/** One model call: who made it, for which project, which model and provider, tokens and cost. */
export const usageEvents = sqliteTable(
  "usage_events",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    /** UTC day, YYYY-MM-DD: the rollup key. */
    day: text().notNull(),
    userId: text().notNull(),
    apiKeyId: text(),
    projectId: text().notNull(),
    /** What made the call: a conversation reply, a run, an embedding. */
    source: text().notNull(),
    sourceId: text(),
    model: text().notNull(),
    provider: text().notNull(),
    tokensIn: integer().notNull(),
    tokensOut: integer().notNull(),
    /** Cost in millionths of a US dollar, from the price table at the time of the call. */
    costMicros: integer().notNull(),
    createdAt: createdAt(),
  },
  (t) => [index("usage_events_tenant_day_idx").on(t.tenantId, t.day)],
);

/** Daily rollups of usage_events, written in the same batch as each event. */
export const usageDaily = sqliteTable(
  "usage_daily",
  {
    tenantId: text().notNull(),
    day: text().notNull(),
    model: text().notNull(),
    projectId: text().notNull(),
    userId: text().notNull(),
    calls: integer().notNull(),
    tokensIn: integer().notNull(),
    tokensOut: integer().notNull(),
    costMicros: integer().notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.day, t.model, t.projectId, t.userId] })],
);

/**
 * Tokens used and reserved this month against the plan's monthly quota. A model call reserves an
 * estimate before it runs (refused if the reservation would pass the quota), then settles to the
 * real count or releases the reservation on failure.
 */
export const tokenQuota = sqliteTable(
  "token_quota",
  {
    tenantId: text().notNull(),
    /** YYYY-MM, UTC. */
    month: text().notNull(),
    used: integer().notNull().default(0),
    reserved: integer().notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.month] })],
);

/**
 * A model call's reservation while the call runs, named by the call's reference (a reply id, a
 * run id): what it holds and in which month. Settling or releasing deletes it, which is what
 * makes either happen once: a settle that finds no hold writes nothing.
 */
export const quotaHolds = sqliteTable(
  "quota_holds",
  {
    tenantId: text().notNull(),
    reference: text().notNull(),
    month: text().notNull(),
    tokens: integer().notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.reference] }), index("quota_holds_created_idx").on(t.createdAt)],
);

/** A configured model call: which model, how it is instructed, which tools it may call. */
export const agents = sqliteTable(
  "agents",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    projectId: text().notNull(),
    name: text().notNull(),
    model: text().notNull(),
    systemPrompt: text(),
    temperature: real(),
    maxTokens: integer().notNull(),
    /** JSON array of {name, description, parameters (a JSON Schema)}. */
    tools: text().notNull().default("[]"),
    /** The prompt whose versions its runs render, unless a run names another. */
    promptKey: text(),
    /** JSON array of knowledge base ids its runs are grounded in. */
    knowledgeBaseIds: text().notNull().default("[]"),
    /** The brand persona whose latest version leads its system prompt. */
    personaId: text(),
    createdBy: text().notNull(),
    createdAt: createdAt(),
    updatedAt: createdAt(),
  },
  (t) => [index("agents_tenant_idx").on(t.tenantId, t.id), index("agents_project_idx").on(t.tenantId, t.projectId, t.id)],
);

/** A prompt: a key with immutable versions. */
export const prompts = sqliteTable(
  "prompts",
  {
    tenantId: text().notNull(),
    key: text().notNull(),
    latestVersion: integer().notNull(),
    createdBy: text().notNull(),
    createdAt: createdAt(),
    updatedAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.key] })],
);

/**
 * One version of a prompt. Its template and variables never change; only its traffic `weight`
 * (its share of runs that do not pin a version) does.
 */
export const promptVersions = sqliteTable(
  "prompt_versions",
  {
    tenantId: text().notNull(),
    promptKey: text().notNull(),
    version: integer().notNull(),
    template: text().notNull(),
    /** JSON array of the `{{variables}}` the template uses. */
    variables: text().notNull(),
    weight: integer().notNull().default(0),
    note: text(),
    createdBy: text().notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.promptKey, t.version] })],
);

export const RUN_STATUSES = ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED"] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/**
 * One queued execution of an agent. The agent's settings and the rendered prompt are copied in at
 * creation, so editing or deleting the agent later does not change what a queued run does.
 */
export const runs = sqliteTable(
  "runs",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    projectId: text().notNull(),
    agentId: text().notNull(),
    status: text({ enum: RUN_STATUSES }).notNull(),
    /** JSON object as the client sent it. */
    input: text().notNull(),
    /** JSON: model, system prompt, temperature, max tokens, tools, as the agent had them. */
    agentConfig: text().notNull(),
    /** The user message sent to the model (the rendered template, or input.text). */
    prompt: text().notNull(),
    promptKey: text(),
    promptVersion: integer(),
    output: text(),
    /** Why it failed or was canceled: a short machine code and a sentence. */
    errorCode: text(),
    error: text(),
    attempts: integer().notNull().default(0),
    /** Who holds the run while RUNNING (a fresh token per attempt) and until when. */
    leaseToken: text(),
    leaseUntil: integer(),
    /** The artifact a successful run writes its output to (id chosen at creation). */
    artifactId: text().notNull(),
    model: text(),
    provider: text(),
    tokensIn: integer(),
    tokensOut: integer(),
    costMicros: integer(),
    latencyMs: integer(),
    /** JSON array of the chunks retrieved for its prompt: {document_id, document_name, chunk_id, score}. */
    citations: text(),
    /** Set by a cancel while RUNNING: the attempt holding the run stops its model call and ends it CANCELED. */
    cancelRequestedAt: text(),
    idempotencyKey: text(),
    requestHash: text(),
    createdBy: text().notNull(),
    apiKeyId: text(),
    createdAt: createdAt(),
    startedAt: text(),
    finishedAt: text(),
    updatedAt: createdAt(),
  },
  (t) => [
    index("runs_tenant_idx").on(t.tenantId, t.id),
    index("runs_status_idx").on(t.tenantId, t.status, t.id),
    index("runs_agent_idx").on(t.tenantId, t.agentId, t.id),
    index("runs_prompt_idx").on(t.tenantId, t.promptKey, t.promptVersion),
    uniqueIndex("runs_idempotency_key").on(t.tenantId, t.idempotencyKey),
  ],
);

/**
 * Every state change, written in the same transaction as the change: `run.started`,
 * `run.succeeded`, `artifact.created`, … Webhook delivery reads from here.
 */
export const outbox = sqliteTable(
  "outbox",
  {
    ...eventColumns(),
    /** Set once delivered to every subscriber (webhooks). */
    publishedAt: text(),
  },
  (t) => [
    index("outbox_tenant_idx").on(t.tenantId, t.id),
    index("outbox_subject_idx").on(t.tenantId, t.subjectId, t.id),
    index("outbox_unpublished_idx").on(t.tenantId, t.publishedAt, t.id),
  ],
);

export const ARTIFACT_KINDS = ["post", "image", "video", "document", "json"] as const;

/** A piece of content with immutable versions; the bytes live in R2. */
export const artifacts = sqliteTable(
  "artifacts",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    projectId: text().notNull(),
    kind: text({ enum: ARTIFACT_KINDS }).notNull(),
    name: text().notNull(),
    latestVersion: integer().notNull(),
    runId: text(),
    createdBy: text().notNull(),
    createdAt: createdAt(),
    updatedAt: createdAt(),
  },
  (t) => [index("artifacts_tenant_idx").on(t.tenantId, t.id), index("artifacts_project_idx").on(t.tenantId, t.projectId, t.id)],
);

/** One version of an artifact: where its bytes are in R2 and what they are. Never updated. */
export const artifactVersions = sqliteTable(
  "artifact_versions",
  {
    tenantId: text().notNull(),
    artifactId: text().notNull(),
    version: integer().notNull(),
    r2Key: text().notNull(),
    sha256: text().notNull(),
    size: integer().notNull(),
    contentType: text().notNull(),
    createdBy: text().notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.artifactId, t.version] })],
);

/**
 * A knowledge base: documents of one project, chunked and embedded with one model. The embedding
 * model and its dimensions are fixed when the base is made (its vectors must stay comparable);
 * the chunking applies to documents ingested after it is set.
 */
export const knowledgeBases = sqliteTable(
  "knowledge_bases",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    projectId: text().notNull(),
    name: text().notNull(),
    description: text(),
    embeddingModel: text().notNull(),
    dimensions: integer().notNull(),
    chunkMaxTokens: integer().notNull(),
    chunkOverlapTokens: integer().notNull(),
    createdBy: text().notNull(),
    createdAt: createdAt(),
    updatedAt: createdAt(),
  },
  (t) => [index("knowledge_bases_tenant_idx").on(t.tenantId, t.id), index("knowledge_bases_project_idx").on(t.tenantId, t.projectId, t.id)],
);

export const DOCUMENT_STATUSES = ["processing", "ready", "failed"] as const;

/**
 * A document in a knowledge base, by name: re-uploading the name makes its next version. The row
 * describes the latest upload (its bytes in R2, its status); `active_version` is the version whose
 * chunks searches see, so the previous version stays searchable until the next one is ready.
 */
export const knowledgeDocuments = sqliteTable(
  "knowledge_documents",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    knowledgeBaseId: text().notNull(),
    projectId: text().notNull(),
    name: text().notNull(),
    version: integer().notNull(),
    activeVersion: integer(),
    status: text({ enum: DOCUMENT_STATUSES }).notNull(),
    contentType: text().notNull(),
    size: integer().notNull(),
    sha256: text().notNull(),
    r2Key: text().notNull(),
    /** JSON object of string/number/boolean values, for search filters. */
    attributes: text().notNull().default("{}"),
    chunkCount: integer(),
    tokenCount: integer(),
    /** Why the latest version failed: a short machine code and a sentence. */
    errorCode: text(),
    error: text(),
    /** Who is ingesting the latest version (a fresh token per attempt) and until when. */
    leaseToken: text(),
    leaseUntil: integer(),
    createdBy: text().notNull(),
    createdAt: createdAt(),
    updatedAt: createdAt(),
  },
  (t) => [
    index("knowledge_documents_tenant_idx").on(t.tenantId, t.id),
    index("knowledge_documents_base_idx").on(t.tenantId, t.knowledgeBaseId, t.id),
    uniqueIndex("knowledge_documents_name").on(t.tenantId, t.knowledgeBaseId, t.name),
  ],
);

/**
 * A chunk of one version of a document, as searches return it. Its id is the vector's id. Until
 * the vector index confirms it has applied the chunk's write (`pending`), the chunk's embedding is
 * kept here and searched exactly beside the index, so a `ready` document is searchable at once.
 * The full-text index (`knowledge_chunks_fts`, FTS5, external content on this table's rowid) holds
 * the chunks of active versions only.
 */
export const knowledgeChunks = sqliteTable(
  "knowledge_chunks",
  {
    /** The full-text index's rowid. */
    pk: integer().primaryKey(),
    id: text().notNull(),
    tenantId: text().notNull(),
    knowledgeBaseId: text().notNull(),
    documentId: text().notNull(),
    version: integer().notNull(),
    seq: integer().notNull(),
    text: text().notNull(),
    tokens: integer().notNull(),
    pending: integer({ mode: "boolean" }).notNull().default(true),
    /** Base64 float32 embedding, kept only while pending. */
    embedding: text(),
    /** The vector write that carried it, and when it was answered (to compare with the index's progress). */
    mutationId: text(),
    mutationAt: integer(),
  },
  (t) => [
    uniqueIndex("knowledge_chunks_id").on(t.id),
    index("knowledge_chunks_document_idx").on(t.tenantId, t.documentId, t.version, t.seq),
    index("knowledge_chunks_pending_idx").on(t.tenantId, t.knowledgeBaseId, t.pending),
  ],
);

export const WEBHOOK_MESSAGE_STATUSES = ["pending", "delivering", "succeeded", "failed"] as const;

/**
 * A tenant's webhook endpoint. The signing secret is kept (it signs every delivery); after a
 * rotation the previous one still signs until `previous_secret_expires_at`.
 */
export const webhookEndpoints = sqliteTable(
  "webhook_endpoints",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    url: text().notNull(),
    description: text(),
    /** JSON array of event types, or null for every type. */
    eventTypes: text(),
    /** JSON object of payload fields (dotted paths into `data`) and the values they must have. */
    filter: text(),
    rateLimitPerSecond: integer(),
    disabled: integer({ mode: "boolean" }).notNull().default(false),
    /** Why it was disabled: "manual", "gone" (an answer 410), "failing" (5 days without a success). */
    disabledReason: text(),
    secret: text().notNull(),
    previousSecret: text(),
    previousSecretExpiresAt: text(),
    lastSuccessAt: text(),
    /** The first failure since the last success (null while deliveries succeed). */
    failingSince: text(),
    createdBy: text().notNull(),
    createdAt: createdAt(),
    updatedAt: createdAt(),
  },
  (t) => [index("webhook_endpoints_tenant_idx").on(t.tenantId, t.id)],
);

/** One event for one endpoint: delivered (with retries) until it succeeds or fails for good; never dropped. */
export const webhookMessages = sqliteTable(
  "webhook_messages",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    endpointId: text().notNull(),
    /** The outbox event's id: also the `webhook-id` header, stable across retries and replays. */
    eventId: text().notNull(),
    eventType: text().notNull(),
    /** The JSON body sent: {type, timestamp, data}. */
    payload: text().notNull(),
    status: text({ enum: WEBHOOK_MESSAGE_STATUSES }).notNull(),
    attempts: integer().notNull().default(0),
    /** When the next attempt is due (null: at once), and who is attempting until when. */
    nextAttemptAt: integer(),
    leaseUntil: integer(),
    lastStatusCode: integer(),
    lastError: text(),
    createdAt: createdAt(),
    updatedAt: createdAt(),
  },
  (t) => [
    index("webhook_messages_tenant_idx").on(t.tenantId, t.id),
    index("webhook_messages_endpoint_idx").on(t.tenantId, t.endpointId, t.id),
    index("webhook_messages_status_idx").on(t.tenantId, t.status, t.nextAttemptAt),
    uniqueIndex("webhook_messages_event").on(t.endpointId, t.eventId),
  ],
);

/** One HTTP attempt of a message: what the endpoint answered (the first 4 KiB of it), or why it failed. */
export const webhookAttempts = sqliteTable(
  "webhook_attempts",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    messageId: text().notNull(),
    endpointId: text().notNull(),
    attempt: integer().notNull(),
    statusCode: integer(),
    durationMs: integer().notNull(),
    responseBody: text(),
    error: text(),
    createdAt: createdAt(),
  },
  (t) => [index("webhook_attempts_message_idx").on(t.tenantId, t.messageId, t.id)],
);

/** A campaign in a project: a plan of posts over dates and channels, moved through its status machine. */
export const campaigns = sqliteTable(
  "campaigns",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    projectId: text().notNull(),
    name: text().notNull(),
    goal: text(),
    /** JSON array of channel names. */
    channels: text().notNull(),
    startsOn: text(),
    endsOn: text(),
    status: text({ enum: ["draft", "active", "paused", "completed", "archived"] }).notNull(),
    ownerId: text().notNull(),
    /** JSON array of tags. */
    tags: text().notNull(),
    createdBy: text().notNull(),
    createdAt: createdAt(),
    updatedAt: createdAt(),
  },
  (t) => [index("campaigns_tenant_idx").on(t.tenantId, t.id), index("campaigns_project_idx").on(t.tenantId, t.projectId, t.id)],
);

/** How a project's posts are reviewed: none, optional, required (one approval) or multi-level. */
export const approvalPolicies = sqliteTable(
  "approval_policies",
  {
    tenantId: text().notNull(),
    projectId: text().notNull(),
    mode: text({ enum: ["none", "optional", "required", "multi_level"] }).notNull(),
    /** JSON: the ordered levels, each {name, reviewers: user ids | null (anyone who may approve), required, remind_after_hours}. */
    levels: text().notNull(),
    updatedBy: text().notNull(),
    updatedAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.projectId] })],
);

/**
 * A post: its content lives in immutable revisions; `revision` is the current one. A submitted post
 * carries the review levels it must pass (the project's policy when it was submitted); approvals
 * name the revision they approve, and `approved_revision` is the one that passed them.
 */
export const posts = sqliteTable(
  "posts",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    projectId: text().notNull(),
    campaignId: text(),
    title: text().notNull(),
    status: text({ enum: ["draft", "in_review", "changes_requested", "approved", "scheduled", "publishing", "published", "failed", "archived"] }).notNull(),
    revision: integer().notNull(),
    /** JSON: the levels the current review must pass (snapshot of the policy at submission). */
    reviewLevels: text(),
    /** When the current revision's review began (submission, or the edit that reopened it). */
    reviewStartedAt: text(),
    approvedRevision: integer(),
    scheduledAt: text(),
    scheduledRevision: integer(),
    /** Why publishing failed, when it did. */
    publishError: text(),
    /** Until when a publish attempt holds the post (ms). */
    publishLeaseUntil: integer(),
    publishedAt: text(),
    createdBy: text().notNull(),
    createdAt: createdAt(),
    updatedAt: createdAt(),
  },
  (t) => [
    index("posts_tenant_idx").on(t.tenantId, t.id),
    index("posts_project_idx").on(t.tenantId, t.projectId, t.id),
    index("posts_campaign_idx").on(t.tenantId, t.campaignId, t.id),
    index("posts_status_idx").on(t.tenantId, t.status, t.scheduledAt),
  ],
);

/** One immutable revision of a post: its title and per-channel variants, who wrote it, and their hash. */
export const postRevisions = sqliteTable(
  "post_revisions",
  {
    tenantId: text().notNull(),
    postId: text().notNull(),
    revision: integer().notNull(),
    title: text().notNull(),
    /** JSON: [{channel, text, media: [{artifact_id, version}], link}]. */
    variants: text().notNull(),
    /** sha256 of the canonical JSON of the title and variants. */
    contentHash: text().notNull(),
    authorId: text().notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.postId, t.revision] })],
);

/** A reviewer's decision on one revision of a post, at one level of its review. */
export const postReviews = sqliteTable(
  "post_reviews",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    postId: text().notNull(),
    revision: integer().notNull(),
    level: integer().notNull(),
    decision: text({ enum: ["approved", "changes_requested"] }).notNull(),
    reviewerType: text({ enum: ["user", "guest"] }).notNull(),
    reviewerId: text().notNull(),
    comment: text(),
    createdAt: createdAt(),
  },
  (t) => [index("post_reviews_post_idx").on(t.tenantId, t.postId, t.revision), uniqueIndex("post_reviews_once").on(t.postId, t.revision, t.reviewerId, t.decision)],
);

/** A comment on a revision of a post, optionally anchored to a text range of one channel's variant; threads by `parent_id`. */
export const postComments = sqliteTable(
  "post_comments",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    postId: text().notNull(),
    revision: integer().notNull(),
    parentId: text(),
    channel: text(),
    anchorStart: integer(),
    anchorEnd: integer(),
    body: text().notNull(),
    authorType: text({ enum: ["user", "guest"] }).notNull(),
    authorId: text().notNull(),
    resolvedAt: text(),
    resolvedBy: text(),
    createdAt: createdAt(),
  },
  (t) => [index("post_comments_post_idx").on(t.tenantId, t.postId, t.id)],
);

/** A link that lets one person without an account review one post: its token is stored hashed, shown once. */
export const reviewLinks = sqliteTable(
  "review_links",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    postId: text().notNull(),
    /** Who the link is for, as their comments and approvals show them. */
    name: text().notNull(),
    tokenHash: text().notNull(),
    expiresAt: text().notNull(),
    revokedAt: text(),
    createdBy: text().notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("review_links_token").on(t.tokenHash), index("review_links_post_idx").on(t.tenantId, t.postId, t.id)],
);

/** A social account connected to a project for one channel; its credentials are encrypted at rest and never answered. */
export const channelAccounts = sqliteTable(
  "channel_accounts",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    projectId: text().notNull(),
    channel: text().notNull(),
    name: text().notNull(),
    /** AES-256-GCM of the credentials' JSON: base64 of the 12-byte IV then the ciphertext. */
    credentials: text().notNull(),
    createdBy: text().notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("channel_accounts_project_channel").on(t.tenantId, t.projectId, t.channel), index("channel_accounts_tenant_idx").on(t.tenantId, t.id)],
);

/** What publishing one revision of a post to one channel produced: the channel's post id and URL. */
export const postPublications = sqliteTable(
  "post_publications",
  {
    tenantId: text().notNull(),
    postId: text().notNull(),
    revision: integer().notNull(),
    channel: text().notNull(),
    accountId: text().notNull(),
    externalId: text().notNull(),
    url: text().notNull(),
    publishedAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.postId, t.revision, t.channel] })],
);

/** A brand persona in a project: its content lives in immutable versions, `latest_version` is the one used. */
export const personas = sqliteTable(
  "personas",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    projectId: text().notNull(),
    name: text().notNull(),
    latestVersion: integer().notNull(),
    createdBy: text().notNull(),
    createdAt: createdAt(),
    updatedAt: createdAt(),
  },
  (t) => [index("personas_tenant_idx").on(t.tenantId, t.id), index("personas_project_idx").on(t.tenantId, t.projectId, t.id)],
);

/** One immutable version of a persona: voice, audience, do's and don'ts, example posts, banned words. */
export const personaVersions = sqliteTable(
  "persona_versions",
  {
    tenantId: text().notNull(),
    personaId: text().notNull(),
    version: integer().notNull(),
    voice: text().notNull(),
    audience: text(),
    /** JSON arrays of strings. */
    dos: text().notNull(),
    donts: text().notNull(),
    examples: text().notNull(),
    bannedWords: text().notNull(),
    createdBy: text().notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.personaId, t.version] })],
);

/** A post's metrics on one channel as its publisher reported them at one hour (cumulative counts). */
export const postMetrics = sqliteTable(
  "post_metrics",
  {
    tenantId: text().notNull(),
    postId: text().notNull(),
    campaignId: text(),
    channel: text().notNull(),
    /** The hour the counts were collected in (ISO, minutes and seconds zero). */
    hour: text().notNull(),
    impressions: integer().notNull(),
    clicks: integer().notNull(),
    reactions: integer().notNull(),
    shares: integer().notNull(),
    /** When the network reports them. */
    conversions: integer(),
  },
  (t) => [primaryKey({ columns: [t.postId, t.channel, t.hour] }), index("post_metrics_campaign_idx").on(t.tenantId, t.campaignId, t.hour)],
);

/** A reminder sent to the reviewers of one level of one revision's review: sent once. */
export const postReminders = sqliteTable(
  "post_reminders",
  {
    tenantId: text().notNull(),
    postId: text().notNull(),
    revision: integer().notNull(),
    level: integer().notNull(),
    sentAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.postId, t.revision, t.level] })],
);

/**
 * A content idea an ideas run produced for a campaign: written with the run's success, all of a
 * run's ideas or none. `post_id` is set once the idea became a post.
 */
export const ideas = sqliteTable(
  "ideas",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    projectId: text().notNull(),
    campaignId: text().notNull(),
    runId: text().notNull(),
    /** Its place in the run's answer, from 0. */
    seq: integer().notNull(),
    title: text().notNull(),
    angle: text().notNull(),
    channel: text().notNull(),
    draft: text().notNull(),
    postId: text(),
    createdAt: createdAt(),
  },
  (t) => [index("ideas_tenant_idx").on(t.tenantId, t.id), index("ideas_campaign_idx").on(t.tenantId, t.campaignId, t.id), uniqueIndex("ideas_run_seq").on(t.tenantId, t.runId, t.seq)],
);

export const EXPORT_SCOPES = ["me", "tenant"] as const;
export const EXPORT_STATUSES = ["queued", "running", "ready", "failed", "expired"] as const;

/**
 * A data export: a person's data in this tenant (`me`) or the whole tenant's, written by the
 * compliance queue's consumer as one ZIP in R2 (src/compliance/exports.ts). Deleted with its object
 * after 7 days.
 */
export const exports = sqliteTable(
  "exports",
  {
    id: text().primaryKey(),
    tenantId: text().notNull(),
    scope: text({ enum: EXPORT_SCOPES }).notNull(),
    /** Who asked; for `me`, also whose data it holds. */
    requestedBy: text().notNull(),
    status: text({ enum: EXPORT_STATUSES }).notNull().default("queued"),
    /** JSON: rows written so far by file, while running. */
    progress: text(),
    /** JSON: the archive's manifest, once ready. */
    manifest: text(),
    objectKey: text(),
    bytes: integer(),
    error: text(),
    createdAt: createdAt(),
    startedAt: text(),
    completedAt: text(),
    expiresAt: text().notNull(),
  },
  (t) => [index("exports_tenant_idx").on(t.tenantId, t.id), index("exports_expiry_idx").on(t.tenantId, t.expiresAt)],
);

export const UPLOADS_ON_ERASURE = ["keep", "erase"] as const;

/** The tenant's retention and erasure policy (one row; absent means the defaults). */
export const complianceSettings = sqliteTable("compliance_settings", {
  tenantId: text().primaryKey(),
  /** Runs (and their outputs) older than this many days are deleted; null keeps them. */
  runRetentionDays: integer(),
  auditRetentionDays: integer().notNull().default(400),
  webhookRetentionDays: integer().notNull().default(30),
  /** What an erased person's uploads become: the tenant's content (`keep`), or erased with them. */
  uploadsOnErasure: text({ enum: UPLOADS_ON_ERASURE }).notNull().default("keep"),
  updatedBy: text(),
  updatedAt: createdAt(),
});
