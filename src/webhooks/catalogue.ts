import { z } from "zod";
import { EVENT_TYPES, type EventType } from "../db/outbox";
import { ROLES } from "../auth/permissions";

/**
 * What every event type the platform emits carries in `data`: a JSON Schema (from these zod
 * schemas) and an example, for `GET /v1/webhooks/event-types`. A test checks that every event the
 * platform writes is described here and validates against its schema. Objects admit more fields
 * than they list, so adding a field is not a breaking change for receivers.
 */

const id = (prefix: string) => z.string().regex(new RegExp(`^${prefix}_`));
const nullable = <T extends z.ZodType>(t: T) => t.nullable();

const Citation = z.looseObject({ index: z.number().int(), document_id: z.string(), document_name: z.string(), chunk_id: z.string(), knowledge_base_id: z.string(), score: z.number() });

const Run = z.looseObject({
  id: id("run"),
  project_id: id("prj"),
  agent_id: id("agt"),
  status: z.enum(["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED"]),
  attempts: z.number().int(),
  prompt: nullable(z.looseObject({ key: z.string(), version: z.number().int() })),
  error: nullable(z.looseObject({ code: z.string(), message: nullable(z.string()) })),
  artifact_id: nullable(id("art")),
  usage: nullable(z.looseObject({ model: nullable(z.string()), provider: nullable(z.string()), tokens_in: nullable(z.number()), tokens_out: nullable(z.number()), cost_micros: nullable(z.number()) })),
  latency_ms: nullable(z.number()),
  citations: nullable(z.array(Citation)),
});

const Content = { size: z.number().int(), sha256: z.string(), content_type: z.string() };
const ArtifactCreated = z.looseObject({ id: id("art"), project_id: id("prj"), kind: z.string(), name: z.string(), run_id: nullable(id("run")), version: z.looseObject({ version: z.number().int(), ...Content }) });
const ArtifactVersion = z.looseObject({ id: id("art"), project_id: id("prj"), kind: z.string(), name: z.string(), ...Content });

const Document = z.looseObject({
  id: id("doc"),
  knowledge_base_id: id("kb"),
  project_id: id("prj"),
  name: z.string(),
  version: z.number().int(),
  active_version: nullable(z.number().int()),
  status: z.enum(["processing", "ready", "failed"]),
  size: z.number().int(),
  chunk_count: nullable(z.number().int()),
  token_count: nullable(z.number().int()),
  error: nullable(z.looseObject({ code: z.string(), message: nullable(z.string()) })),
});

const Conversation = z.looseObject({ id: id("cnv"), project_id: id("prj"), title: nullable(z.string()), model: z.string(), knowledge_base_ids: z.array(z.string()), created_by: id("usr") });
const conversationExample = { id: "cnv_01hx0000000000000000000000", project_id: "prj_01hx0000000000000000000000", title: "Launch week ideas", model: "@cf/meta/llama-3.1-8b-instruct", knowledge_base_ids: [], created_by: "usr_01hx0000000000000000000000" };

const Role = z.enum(ROLES);
const Projects = nullable(z.array(id("prj"))).describe("The projects the member is limited to; null for every project");
const Member = z.looseObject({ user_id: id("usr"), email: z.string(), name: z.string(), role: Role, projects: Projects, joined_at: z.string() });
const memberExample = { user_id: "usr_01hx0000000000000000000000", email: "sam@agency.example", name: "Sam Rivera", role: "editor", projects: null, joined_at: "2026-11-29T09:00:00.000Z" };

const CampaignStatusEnum = z.enum(["draft", "active", "paused", "completed", "archived"]);
const Campaign = z.looseObject({ id: id("cmp"), project_id: id("prj"), name: z.string(), status: CampaignStatusEnum, channels: z.array(z.string()), starts_on: nullable(z.string()), ends_on: nullable(z.string()), owner_id: z.string() });
const campaignExample = { id: "cmp_01hx0000000000000000000000", project_id: "prj_01hx0000000000000000000000", name: "Spring launch", status: "draft", channels: ["linkedin", "instagram"], starts_on: "2027-03-01", ends_on: "2027-03-31", owner_id: "usr_01hx0000000000000000000000" };
const CampaignMoved = z.looseObject({ id: id("cmp"), status: CampaignStatusEnum, from: z.array(CampaignStatusEnum) });
const PostStatusEnum = z.enum(["draft", "in_review", "changes_requested", "approved", "scheduled", "publishing", "published", "failed", "archived"]);
const Post = z.looseObject({
  id: id("pst"),
  project_id: id("prj"),
  campaign_id: nullable(id("cmp")),
  title: z.string(),
  status: PostStatusEnum,
  revision: z.number().int(),
  approved_revision: nullable(z.number().int()),
  scheduled_at: nullable(z.string()),
});
const postExample = { id: "pst_01hx0000000000000000000000", project_id: "prj_01hx0000000000000000000000", campaign_id: "cmp_01hx0000000000000000000000", title: "Launch day", status: "draft", revision: 1, approved_revision: null, scheduled_at: null };
const Comment = z.looseObject({
  id: id("pcm"),
  post_id: id("pst"),
  revision: z.number().int(),
  parent_id: nullable(id("pcm")),
  anchor: nullable(z.looseObject({ channel: z.string(), start: z.number().int(), end: z.number().int() })),
  body: z.string(),
  author: z.looseObject({ type: z.enum(["user", "guest"]), id: z.string() }),
});

const runExample = {
  id: "run_01hx0000000000000000000000",
  project_id: "prj_01hx0000000000000000000000",
  agent_id: "agt_01hx0000000000000000000000",
  status: "SUCCEEDED",
  attempts: 1,
  prompt: { key: "launch-post", version: 3 },
  error: null,
  artifact_id: "art_01hx0000000000000000000000",
  usage: { model: "@cf/meta/llama-3.1-8b-instruct", provider: "workers-ai", tokens_in: 212, tokens_out: 180, cost_micros: 41 },
  latency_ms: 1840,
  citations: null,
};
const content = { size: 1280, sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", content_type: "text/markdown" };
const artifact = { id: "art_01hx0000000000000000000000", project_id: "prj_01hx0000000000000000000000", kind: "post", name: "Launch post" };
const documentExample = {
  id: "doc_01hx0000000000000000000000",
  knowledge_base_id: "kb_01hx0000000000000000000000",
  project_id: "prj_01hx0000000000000000000000",
  name: "brand-guide.md",
  version: 2,
  active_version: 2,
  status: "ready",
  size: 18432,
  chunk_count: 24,
  token_count: 9800,
  error: null,
};

const TYPES: Record<EventType, { description: string; schema: z.ZodType; example: Record<string, unknown> }> = {
  "run.created": { description: "A run was queued", schema: Run, example: { ...runExample, status: "PENDING", attempts: 0, artifact_id: null, usage: null, latency_ms: null } },
  "run.started": { description: "An attempt of a run started", schema: Run, example: { ...runExample, status: "RUNNING", artifact_id: null, usage: null, latency_ms: null } },
  "run.retrying": { description: "An attempt failed transiently; the run will be tried again", schema: Run.extend({ retry_in_seconds: z.number().int() }), example: { ...runExample, status: "PENDING", error: { code: "provider_error", message: "Workers AI: 3040 capacity" }, artifact_id: null, usage: null, retry_in_seconds: 20 } },
  "run.retrieved": { description: "A run retrieved knowledge for its prompt", schema: Run.extend({ chunk_ids: z.array(z.string()), document_ids: z.array(z.string()) }), example: { ...runExample, status: "RUNNING", chunk_ids: ["chk_01hx0000000000000000000000_2_0"], document_ids: ["doc_01hx0000000000000000000000"] } },
  "run.succeeded": { description: "A run finished with its output stored as an artifact", schema: Run, example: runExample },
  "run.failed": { description: "A run failed for good", schema: Run, example: { ...runExample, status: "FAILED", error: { code: "provider_rejected", message: "Workers AI: 5007 no such model" }, artifact_id: null } },
  "run.canceled": { description: "A run was canceled", schema: Run, example: { ...runExample, status: "CANCELED", error: { code: "canceled", message: "Canceled before it ran" }, artifact_id: null, usage: null } },
  "artifact.created": { description: "An artifact and its first version were stored", schema: ArtifactCreated, example: { ...artifact, run_id: null, version: { version: 1, ...content } } },
  "artifact.version_created": { description: "An artifact has a new version", schema: ArtifactVersion, example: { ...artifact, ...content } },
  "conversation.created": { description: "A conversation was created", schema: Conversation, example: conversationExample },
  "conversation.updated": { description: "A conversation's settings changed", schema: Conversation, example: { ...conversationExample, title: "Launch week" } },
  "conversation.deleted": { description: "A conversation was deleted with its messages", schema: Conversation, example: conversationExample },
  "member.joined": { description: "A person accepted an invitation and became a member", schema: Member, example: memberExample },
  "member.role_changed": { description: "A member's role changed", schema: Member.extend({ previous_role: Role }), example: { ...memberExample, role: "admin", previous_role: "editor" } },
  "member.projects_changed": {
    description: "The projects a member is limited to changed",
    schema: Member.extend({ previous_projects: Projects }),
    example: { ...memberExample, role: "client", projects: ["prj_01hx0000000000000000000000"], previous_projects: null },
  },
  "member.removed": { description: "A member was removed; their sessions and keys ended with the membership", schema: Member, example: memberExample },
  "document.ready": { description: "A knowledge document's version is searchable", schema: Document, example: documentExample },
  "document.updated": { description: "A knowledge document's attributes changed", schema: Document.extend({ attributes: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])) }), example: { ...documentExample, attributes: { lang: "en" } } },
  "document.failed": { description: "A knowledge document's version could not be ingested", schema: Document, example: { ...documentExample, status: "failed", active_version: 1, error: { code: "empty_document", message: "The document has no text once extracted" } } },
  "document.deleted": { description: "A knowledge document was deleted with its chunks", schema: Document, example: documentExample },
  "campaign.created": { description: "A campaign was created (draft)", schema: Campaign, example: campaignExample },
  "campaign.updated": { description: "A campaign's fields changed", schema: z.looseObject({ id: id("cmp"), fields: z.array(z.string()) }), example: { id: campaignExample.id, fields: ["name", "ends_on"] } },
  "campaign.activated": { description: "A campaign became active", schema: CampaignMoved, example: { id: campaignExample.id, status: "active", from: ["draft", "paused"] } },
  "campaign.paused": { description: "A campaign was paused", schema: CampaignMoved, example: { id: campaignExample.id, status: "paused", from: ["active"] } },
  "campaign.completed": { description: "A campaign was completed", schema: CampaignMoved, example: { id: campaignExample.id, status: "completed", from: ["active", "paused"] } },
  "campaign.archived": { description: "A campaign was archived", schema: CampaignMoved, example: { id: campaignExample.id, status: "archived", from: ["draft", "paused", "completed"] } },
  "campaign.deleted": { description: "A campaign was deleted (its posts stay in the project)", schema: Campaign, example: campaignExample },
  "post.created": { description: "A post was created with its first revision", schema: Post, example: postExample },
  "post.revised": {
    description: "A post has a new revision; an approved or scheduled post went back to review (reopened)",
    schema: Post.extend({ content_hash: z.string(), reopened: z.boolean() }),
    example: { ...postExample, revision: 2, content_hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", reopened: false },
  },
  "post.submitted": { description: "A post was submitted for review under its project's policy", schema: Post.extend({ policy: z.enum(["none", "optional", "required", "multi_level"]) }), example: { ...postExample, status: "in_review", policy: "required" } },
  "post.approved": { description: "A revision of a post passed review", schema: Post, example: { ...postExample, status: "approved", approved_revision: 1 } },
  "post.changes_requested": { description: "A reviewer sent a revision back with a comment", schema: Post.extend({ comment: z.string() }), example: { ...postExample, status: "changes_requested", comment: "Shorter headline, please" } },
  "post.scheduled": { description: "A post was scheduled: the revision that will be published, and when", schema: Post.extend({ scheduled_revision: z.number().int() }), example: { ...postExample, status: "scheduled", approved_revision: 1, scheduled_at: "2027-03-01T09:00:00.000Z", scheduled_revision: 1 } },
  "post.unscheduled": { description: "A post was taken off the schedule", schema: Post, example: { ...postExample, status: "approved", approved_revision: 1 } },
  "post.archived": { description: "A post was archived", schema: Post.extend({ from: PostStatusEnum }), example: { ...postExample, status: "archived", from: "draft" } },
  "post.review_reminder": {
    description: "A level of a post's review has waited past its remind_after_hours: remind its reviewers (once per revision and level)",
    schema: Post.extend({ level: z.number().int(), level_name: z.string(), reviewers: nullable(z.array(z.string())), waiting_since: z.string() }),
    example: { ...postExample, status: "in_review", level: 2, level_name: "Client", reviewers: ["usr_01hx0000000000000000000000"], waiting_since: "2026-11-28T09:00:00.000Z" },
  },
  "post.published": {
    description: "A post's scheduled revision was published to every channel",
    schema: Post.extend({ publications: z.array(z.looseObject({ channel: z.string(), external_id: z.string(), url: z.string() })) }),
    example: { ...postExample, status: "published", revision: 1, publications: [{ channel: "linkedin", external_id: "5f2c9a1e0b7d4c3a", url: "https://sandbox.tessera.local/linkedin/5f2c9a1e0b7d4c3a" }] },
  },
  "post.failed": { description: "Publishing a post failed for good, saying why", schema: Post.extend({ error: z.string() }), example: { ...postExample, status: "failed", error: "publish_refused: linkedin: 400 text too long" } },
  "comment.created": {
    description: "A comment was made on a revision of a post",
    schema: Comment,
    example: { id: "pcm_01hx0000000000000000000000", post_id: postExample.id, revision: 1, parent_id: null, anchor: { channel: "linkedin", start: 0, end: 12 }, body: "Love this opening", author: { type: "user", id: "usr_01hx0000000000000000000000" } },
  },
  "webhook.endpoint_disabled": {
    description: "A webhook endpoint was disabled: it answered 410 Gone, or failed for 5 days",
    schema: z.looseObject({ id: id("whe"), url: z.string(), reason: z.enum(["gone", "failing"]), detail: z.string() }),
    example: { id: "whe_01hx0000000000000000000000", url: "https://hooks.example.com/tessera", reason: "gone", detail: "the endpoint answered 410 Gone" },
  },
  "audit.entry_created": {
    description: "An entry was added to the audit log (its details are read with GET /v1/audit-log; they may name people)",
    schema: z.looseObject({
      id: id("aud"),
      action: z.string(),
      actor: z.looseObject({ type: z.enum(["user", "api_key", "guest", "platform"]), id: nullable(z.string()) }),
      resource: z.looseObject({ type: z.string(), id: nullable(z.string()) }),
      request_id: z.string(),
      created_at: z.string(),
    }),
    example: { id: "aud_01hx0000000000000000000000", action: "project.created", actor: { type: "user", id: "usr_01hx0000000000000000000000" }, resource: { type: "project", id: "prj_01hx0000000000000000000000" }, request_id: "req_01hx0000000000000000000000", created_at: "2026-11-29T10:00:00.000Z" },
  },
  "webhook.test": { description: "A test event, sent to one endpoint on request", schema: z.looseObject({ endpoint_id: id("whe"), message: z.string() }), example: { endpoint_id: "whe_01hx0000000000000000000000", message: "A test event from Tessera" } },
};

/** The catalogue: each type, what it means, its payload's JSON Schema, and an example payload. */
export function catalogue() {
  return EVENT_TYPES.map((type) => {
    const t = TYPES[type];
    return {
      type,
      description: t.description,
      schema: z.toJSONSchema(z.object({ type: z.literal(type), timestamp: z.string(), data: t.schema })) as Record<string, unknown>,
      example: { type, timestamp: "2026-11-29T10:00:00.000Z", data: t.example },
    };
  });
}
