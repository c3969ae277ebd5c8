import { insertWhere } from "./insert-where";
import { sql } from "drizzle-orm";
import { newId } from "../lib/ids";
import type { TenantDb } from "./router";
import { outbox } from "./tenant/schema";

/** The events the platform emits; webhooks subscribe to these names. */
export const EVENT_TYPES = [
  "run.created",
  "run.started",
  "run.retrying",
  "run.succeeded",
  "run.failed",
  "run.canceled",
  "artifact.created",
  "artifact.version_created",
  "conversation.created",
  "conversation.updated",
  "conversation.deleted",
  "member.joined",
  "member.role_changed",
  "member.projects_changed",
  "member.removed",
  "run.retrieved",
  "document.ready",
  "document.updated",
  "document.failed",
  "document.deleted",
  "campaign.created",
  "campaign.updated",
  "campaign.activated",
  "campaign.paused",
  "campaign.completed",
  "campaign.archived",
  "campaign.deleted",
  "post.created",
  "post.revised",
  "post.submitted",
  "post.approved",
  "post.changes_requested",
  "post.scheduled",
  "post.unscheduled",
  "post.archived",
  "post.review_reminder",
  "post.published",
  "post.failed",
  "comment.created",
  "webhook.endpoint_disabled",
  "webhook.test",
  /** Written by the audit_log insert trigger (migration 0019), never by code. */
  "audit.entry_created",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface OutboxEvent {
  /** Minted by the caller when later statements of the batch must check that this event landed. */
  id?: string;
  tenantId: string;
  type: EventType;
  subjectType: "run" | "artifact" | "document" | "conversation" | "member" | "campaign" | "post" | "comment" | "webhook_endpoint" | "audit_entry";
  subjectId: string;
  data: Record<string, unknown>;
}

/**
 * The insert that records an event inside the batch that makes the change, right after the
 * changing statement: it writes only if that statement changed a row, so an event is never
 * written for a change that did not happen, and both land or neither.
 */
export function eventAfterChange(db: TenantDb, e: OutboxEvent) {
  const id = e.id ?? newId("evt");
  return insertWhere(db, outbox, { id, tenantId: e.tenantId, type: e.type, subjectType: e.subjectType, subjectId: e.subjectId, data: JSON.stringify(e.data) }, sql`changes() > 0`);
}

/** The SQL condition "event `id` was written": guards the later statements of a transition's batch. */
export const eventWritten = (id: string) => sql`EXISTS (SELECT 1 FROM ${outbox} WHERE ${outbox.id} = ${id})`;
