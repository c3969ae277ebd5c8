import { z } from "@hono/zod-openapi";
import { tenantById } from "../db/directory";
import { and, eq, lt, or, sql } from "drizzle-orm";
import { auditInsert } from "../db/audit";
import { insertWhere } from "../db/insert-where";
import { eventAfterChange, eventWritten } from "../db/outbox";
import { coalescing } from "../db/coalesce";
import { type TenantDb, tenantDb } from "../db/router";
import { webhookAttempts, webhookEndpoints, webhookMessages } from "../db/tenant/schema";
import { type Env, loadConfig } from "../env";
import { newId } from "../lib/ids";
import { LIMITER_KEYS, take } from "../limits/rate-limit";
import { createLogger, errorFields } from "../lib/log";
import { dispatch, forgetEndpoints } from "./dispatch";
import { type EndpointRow, liveSecrets } from "./endpoints";
import { signatures } from "./signing";

export const DeliveryMessage = z.object({ v: z.literal(1), tenant_id: z.string().min(1).max(64), message_id: z.string().min(1).max(64) });

type MessageRow = typeof webhookMessages.$inferSelect;

/** Seconds before attempt n + 1 after attempt n failed (Standard Webhooks: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h). */
export const RETRY_SCHEDULE_SECONDS = [5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600] as const;
/** Attempts a message gets before it is `failed`. */
export const MAX_ATTEMPTS = RETRY_SCHEDULE_SECONDS.length + 1;
/** An endpoint failing this long without a success is disabled. */
export const FAILING_DISABLE_MS = 5 * 24 * 3600 * 1000;
/** How long an attempt holds its message (past the 15 s time-out, so a live attempt is never taken over). */
const ATTEMPT_LEASE_MS = 60_000;
/** How much of a response body an attempt keeps. */
const RESPONSE_BYTES = 4096;
/** The longest a queue retry may be delayed. */
const MAX_DELAY_SECONDS = 24 * 3600;

/** The delay before the next attempt: the schedule with ±10% jitter, or the endpoint's Retry-After (429, 503). */
export function nextDelaySeconds(attempts: number, retryAfter: string | null, roll = Math.random()): number {
  const asked = retryAfter ? (/^\d+$/.test(retryAfter.trim()) ? Number(retryAfter) : Math.ceil((Date.parse(retryAfter) - Date.now()) / 1000)) : Number.NaN;
  if (Number.isFinite(asked) && asked >= 0) return Math.min(MAX_DELAY_SECONDS, Math.max(1, asked));
  const base = RETRY_SCHEDULE_SECONDS[Math.min(attempts, RETRY_SCHEDULE_SECONDS.length) - 1] ?? RETRY_SCHEDULE_SECONDS[0];
  return Math.max(1, Math.round(base * (0.9 + 0.2 * roll)));
}

interface Outcome {
  statusCode: number | null;
  body: string | null;
  error: string | null;
  durationMs: number;
  retryAfter: string | null;
}

/** Reads at most `limit` bytes of a response body as text, then lets the rest go. */
async function head(res: Response, limit: number): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (size < limit) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
  }
  await reader.cancel().catch(() => {});
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder().decode(all.subarray(0, limit));
}

/** One signed POST of the message to its endpoint (with its opened `secrets`): no redirects followed, abandoned after `timeoutMs` (the config's 15 s). */
export async function attempt(endpoint: EndpointRow, secrets: string[], message: MessageRow, timeoutMs: number, now = Date.now()): Promise<Outcome> {
  const timestamp = Math.floor(now / 1000);
  const headers = {
    "content-type": "application/json",
    "user-agent": "Tessera-Webhooks/1",
    "webhook-id": message.eventId,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": await signatures(secrets, message.eventId, timestamp, message.payload),
  };
  const started = Date.now();
  try {
    const res = await fetch(endpoint.url, { method: "POST", headers, body: message.payload, redirect: "manual", signal: AbortSignal.timeout(timeoutMs) });
    const body = await head(res, RESPONSE_BYTES).catch(() => "");
    const redirect = res.status >= 300 && res.status < 400 ? `redirect to ${res.headers.get("location") ?? "(no location)"} not followed` : null;
    return { statusCode: res.status, body, error: redirect, durationMs: Date.now() - started, retryAfter: res.headers.get("retry-after") };
  } catch (err) {
    const timedOut = err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError");
    return { statusCode: null, body: null, error: timedOut ? `no answer within ${timeoutMs / 1000} s` : `could not connect: ${err instanceof Error ? err.message : String(err)}`, durationMs: Date.now() - started, retryAfter: null };
  }
}

const isMessage = (m: { tenantId: string; id: string }) => and(eq(webhookMessages.tenantId, m.tenantId), eq(webhookMessages.id, m.id));
const isEndpointRow = (e: { tenantId: string; id: string }) => and(eq(webhookEndpoints.tenantId, e.tenantId), eq(webhookEndpoints.id, e.id));

/**
 * Claims a batch's messages of one tenant for one attempt each, in one statement: those pending
 * (or held by an attempt that died) and due. A duplicate delivery, a message done or not yet due is
 * not claimed. With the endpoints they go to: one round trip for every delivery of the batch.
 */
async function claimAll(db: TenantDb, tenantId: string, ids: string[], now: number): Promise<{ claimed: Map<string, MessageRow>; endpoints: Map<string, EndpointRow> }> {
  const list = JSON.stringify(ids);
  const inBatch = sql`${webhookMessages.id} IN (SELECT value FROM json_each(${list}))`;
  const [claimed, endpoints] = await db.batch([
    db
      .update(webhookMessages)
      .set({ status: "delivering", attempts: sql`${webhookMessages.attempts} + 1`, leaseUntil: now + ATTEMPT_LEASE_MS, updatedAt: new Date(now).toISOString() })
      .where(
        and(
          eq(webhookMessages.tenantId, tenantId),
          inBatch,
          or(eq(webhookMessages.status, "pending"), and(eq(webhookMessages.status, "delivering"), lt(webhookMessages.leaseUntil, now))),
          sql`coalesce(${webhookMessages.nextAttemptAt}, 0) <= ${now + 1000}`,
        ),
      )
      .returning(),
    db
      .select()
      .from(webhookEndpoints)
      .where(
        and(
          eq(webhookEndpoints.tenantId, tenantId),
          sql`${webhookEndpoints.id} IN (SELECT ${webhookMessages.endpointId} FROM ${webhookMessages} WHERE ${webhookMessages.tenantId} = ${tenantId} AND ${inBatch})`,
        ),
      ),
  ]);
  return { claimed: new Map(claimed.map((m) => [m.id, m])), endpoints: new Map(endpoints.map((e) => [e.id, e])) };
}

/** The statements that disable an endpoint (if still enabled), with its event to the tenant's other endpoints and an audit entry. */
function disableStatements(db: TenantDb, endpoint: EndpointRow, reason: "gone" | "failing", detail: string) {
  const at = new Date().toISOString();
  const eventId = newId("evt");
  // The event and the audit entry only if this batch disabled it (another may have, at the same time).
  return [
    db
      .update(webhookEndpoints)
      .set({ disabled: true, disabledReason: reason, updatedAt: at })
      .where(and(isEndpointRow(endpoint), eq(webhookEndpoints.disabled, false))),
    eventAfterChange(db, { id: eventId, tenantId: endpoint.tenantId, type: "webhook.endpoint_disabled", subjectType: "webhook_endpoint", subjectId: endpoint.id, data: { id: endpoint.id, url: endpoint.url, reason, detail } }),
    auditInsert(db, endpoint.tenantId, { type: "platform" }, `webhooks:${endpoint.id}`, { action: "webhook_endpoint.disabled", resourceType: "webhook_endpoint", resourceId: endpoint.id, details: { reason, detail } }, eventWritten(eventId)),
  ] as const;
}

/** What an attempt's outcome means: the message's next state and the endpoint's. */
function decide(endpoint: EndpointRow, m: MessageRow, o: Outcome, now: number) {
  const ok = o.statusCode !== null && o.statusCode >= 200 && o.statusCode < 300;
  const gone = o.statusCode === 410;
  const tooLong = !ok && endpoint.failingSince !== null && now - Date.parse(endpoint.failingSince) >= FAILING_DISABLE_MS;
  const last = m.attempts >= MAX_ATTEMPTS;
  const retryIn = ok || gone || tooLong || last ? null : nextDelaySeconds(m.attempts, o.statusCode === 429 || o.statusCode === 503 ? o.retryAfter : null);
  const error = o.error ?? (ok ? null : `HTTP ${o.statusCode}`);
  return { ok, gone, tooLong, retryIn, error, status: ok ? "succeeded" : retryIn === null ? "failed" : "pending" };
}

/** How a batch's attempts for one tenant ended. */
type Tally = Record<"succeeded" | "retrying" | "failed", number>;

interface Recorded {
  endpoint: EndpointRow;
  m: MessageRow;
  o: Outcome;
  resolve: (r: { retryIn: number | null; disabled: boolean }) => void;
  reject: (err: unknown) => void;
}

/** The longest a finished attempt waits for the batch's others before it is recorded without them. */
const RECORD_WAIT_MS = 100;

/**
 * Records the attempts of one tenant's batch together — once every attempt in flight has ended, or
 * RECORD_WAIT_MS after the first ended, whichever comes first (so a slow endpoint does not hold the
 * others' records for its 15 s) — in one transaction of a few set-based statements whatever their
 * number: the attempt rows; each
 * message succeeded, failed for good, or pending its next attempt (only while its attempt still
 * holds it); each endpoint's success or failure record, written when it changes; and an endpoint's
 * disabling on a 410 or after 5 days of failures, with its event and audit entry.
 */
class Recorder {
  private pending: Recorded[] = [];
  private inFlight = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly db: TenantDb) {}

  /** An attempt starts: it will be recorded, or `abandoned`. */
  started(): void {
    this.inFlight++;
  }

  /** An attempt that started ends without an outcome to record. */
  abandoned(): void {
    this.inFlight--;
    if (this.pending.length && this.inFlight === 0) this.flushNow();
  }

  record(endpoint: EndpointRow, m: MessageRow, o: Outcome): Promise<{ retryIn: number | null; disabled: boolean }> {
    return new Promise((resolve, reject) => {
      this.inFlight--;
      this.pending.push({ endpoint, m, o, resolve, reject });
      if (this.inFlight === 0) this.flushNow();
      else this.timer ??= setTimeout(() => this.flushNow(), RECORD_WAIT_MS);
    });
  }

  private flushNow(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    void this.flush();
  }

  private async flush() {
    const group = this.pending;
    this.pending = [];
    if (!group.length) return;
    const db = this.db;
    const now = Date.now();
    const at = new Date(now).toISOString();
    const decided = group.map((r) => ({ ...r, d: decide(r.endpoint, r.m, r.o, now) }));
    const attempts = JSON.stringify(decided.map(({ m, o, endpoint, d }) => [newId("wha"), m.id, endpoint.id, m.attempts, o.statusCode, o.durationMs, o.body, d.error]));
    const col = (i: number) => sql`json_extract(j.value, ${`$[${i}]`})`;
    const outcomes = JSON.stringify(decided.map(({ m, o, d }) => ({ id: m.id, attempts: m.attempts, status: d.status, next: d.retryIn === null ? null : now + d.retryIn * 1000, code: o.statusCode, error: d.error })));
    const field = (name: string) => sql`json_extract(value, ${`$.${name}`}) AS ${sql.raw(name)}`;
    const outcomeTable = sql`(SELECT ${sql.join(["id", "attempts", "status", "next", "code", "error"].map(field), sql`, `)} FROM json_each(${outcomes})) AS o`;
    const endpointStatements = [...new Map(decided.map((r) => [r.endpoint.id, r.endpoint])).values()].flatMap((endpoint) => {
      const mine = decided.filter((r) => r.endpoint.id === endpoint.id);
      const ok = mine.some((r) => r.d.ok);
      const changed = ok ? endpoint.failingSince !== null || !endpoint.lastSuccessAt || now - Date.parse(endpoint.lastSuccessAt) > 60_000 : endpoint.failingSince === null;
      return [
        ...(changed ? [db.update(webhookEndpoints).set(ok ? { lastSuccessAt: at, failingSince: null } : { failingSince: at }).where(isEndpointRow(endpoint))] : []),
        ...(mine.some((r) => r.d.gone)
          ? disableStatements(db, endpoint, "gone", "the endpoint answered 410 Gone")
          : mine.some((r) => r.d.tooLong)
            ? disableStatements(db, endpoint, "failing", "no successful delivery for 5 days")
            : []),
      ];
    });
    const statements = [
      insertWhere(
        db,
        webhookAttempts,
        { id: col(0), tenantId: group[0]!.m.tenantId, messageId: col(1), endpointId: col(2), attempt: col(3), statusCode: col(4), durationMs: col(5), responseBody: col(6), error: col(7), createdAt: at },
        sql`1`,
        sql`json_each(${attempts}) j`,
      ),
      // UPDATE … FROM the outcomes as a table: each message joins its own outcome once (a
      // correlated lookup per column scans the whole JSON array per message and column). The unary
      // `+` keeps the planner off the status index, which would scan every delivering message
      // once per outcome: it walks the outcomes and finds each message by its primary key.
      db
        .update(webhookMessages)
        .set({ status: sql`o.status`, nextAttemptAt: sql`o.next`, lastStatusCode: sql`o.code`, lastError: sql`o.error`, leaseUntil: null, updatedAt: at })
        .from(outcomeTable)
        .where(
          and(
            sql`+${webhookMessages.tenantId} = ${group[0]!.m.tenantId}`,
            sql`+${webhookMessages.status} = 'delivering'`,
            sql`${webhookMessages.id} = o.id`,
            sql`+${webhookMessages.attempts} = o.attempts`,
          ),
        ),
      ...endpointStatements,
    ];
    try {
      await db.batch(statements as unknown as [(typeof statements)[number], ...(typeof statements)[number][]]);
      for (const r of decided) r.resolve({ retryIn: r.d.retryIn, disabled: r.d.gone || r.d.tooLong });
    } catch (err) {
      for (const r of decided) r.reject(err);
    }
  }
}

/** Ends a message `failed` (kept, to be replayed or recovered) without an attempt: its endpoint is gone or disabled. */
async function failWithoutAttempt(db: TenantDb, m: MessageRow, error: string) {
  await db.batch([
    db
      .update(webhookMessages)
      .set({ status: "failed", lastError: error, leaseUntil: null, updatedAt: new Date().toISOString() })
      .where(and(isMessage(m), or(eq(webhookMessages.status, "pending"), eq(webhookMessages.status, "delivering")))),
  ]);
}

/** Ends these messages `failed` without attempts, in one statement (those still pending or delivering). */
async function failAll(db: TenantDb, tenantId: string, ids: string[], error: string) {
  await db
    .update(webhookMessages)
    .set({ status: "failed", lastError: error, leaseUntil: null, updatedAt: new Date().toISOString() })
    .where(
      and(
        eq(webhookMessages.tenantId, tenantId),
        sql`${webhookMessages.id} IN (SELECT value FROM json_each(${JSON.stringify(ids)}))`,
        // `+`: found by id, not by walking every pending message of the tenant through the status index.
        sql`+${webhookMessages.status} IN ('pending', 'delivering')`,
      ),
    )
    .run();
}

/** The `tessera-webhooks` queue: each delivery makes at most one attempt of its message, however often it arrives. */
export async function consumeWebhooks(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const log = createLogger({ queue: batch.queue });
  const touched = new Map<string, { id: string; dbBinding: string }>();
  const byTenant = new Map<string, { message: Message<unknown>; id: string }[]>();
  for (const message of batch.messages) {
    const body = DeliveryMessage.safeParse(message.body);
    if (!body.success) {
      log.error("webhook.message_invalid", { message_id: message.id });
      message.ack();
      continue;
    }
    byTenant.set(body.data.tenant_id, [...(byTenant.get(body.data.tenant_id) ?? []), { message, id: body.data.message_id }]);
  }
  await Promise.all(
    [...byTenant].map(async ([tenantId, items]) => {
      try {
        const tenant = await tenantById(env, tenantId);
        if (!tenant) {
          for (const item of items) item.message.ack();
          return;
        }
        if (tenant.status !== "active") {
          // A suspended tenant sends nothing; its messages are kept as failed, to recover once it is active again.
          await failAll(tenantDb(env, tenant), tenant.id, items.map((i) => i.id), `tenant_${tenant.status}: kept; recover them once the tenant is active again`);
          for (const item of items) item.message.ack();
          return;
        }
        // A tenant's deliveries claim together (one statement), then record together (one round trip).
        const db = coalescing(tenantDb(env, tenant));
        const started = Date.now();
        const { claimed, endpoints } = await claimAll(db, tenant.id, items.map((i) => i.id), started);
        const claimMs = Date.now() - started;
        const recorder = new Recorder(db);
        // One log line per tenant and batch (each attempt is in webhook_attempts): a line per delivery costs more than the delivery.
        const tally: Tally = { succeeded: 0, retrying: 0, failed: 0 };
        // The same message twice in one batch: the first delivery makes the attempt, the second finds it held.
        const taken = new Set<string>();
        await Promise.all(
          items.map(async (item) => {
            const claim = taken.has(item.id) ? undefined : claimed.get(item.id);
            taken.add(item.id);
            try {
              if (await deliverOne(env, db, tenant, item.message, item.id, claim, endpoints, recorder, tally)) touched.set(tenant.id, tenant);
            } catch (err) {
              log.error("webhook.delivery_failed", { ...errorFields(err), webhook_message_id: item.id });
              item.message.retry({ delaySeconds: 30 });
            }
          }),
        );
        if (tally.succeeded + tally.retrying + tally.failed) log.info("webhooks.attempted", { tenant_id: tenant.id, ...tally, claim_ms: claimMs, batch_ms: Date.now() - started });
      } catch (err) {
        log.error("webhook.delivery_failed", { ...errorFields(err), tenant_id: tenantId, messages: items.length });
        for (const item of items) item.message.retry({ delaySeconds: 30 });
      }
    }),
  );
  // A disabled endpoint's event goes out to the tenant's other endpoints now, not at the next sweep.
  for (const tenant of touched.values()) {
    forgetEndpoints(tenant.id);
    await dispatch(env, tenant).catch((err) => log.error("webhooks.dispatch_failed", { ...errorFields(err), tenant_id: tenant.id }));
  }
}

/**
 * One delivery of a message the batch tried to claim: the attempt when it was claimed; otherwise
 * why not (done, not due yet, or another delivery attempting it) decides between ack and retry.
 * Answers whether an endpoint was disabled.
 */
async function deliverOne(
  env: Env,
  db: TenantDb,
  tenant: { id: string; dbBinding: string },
  message: Message<unknown>,
  messageId: string,
  claimed: MessageRow | undefined,
  endpoints: Map<string, EndpointRow>,
  recorder: Recorder,
  tally: Tally,
): Promise<boolean> {
  const now = Date.now();
  if (!claimed) {
    const [rows] = await db.batch([db.select().from(webhookMessages).where(isMessage({ tenantId: tenant.id, id: messageId }))]);
    const m = rows[0];
    if (m && (m.status === "pending" || m.status === "delivering") && m.nextAttemptAt !== null && m.nextAttemptAt > now + 1000) message.retry({ delaySeconds: Math.ceil((m.nextAttemptAt - now) / 1000) });
    else message.ack();
    return false;
  }
  const endpoint = endpoints.get(claimed.endpointId);
  if (!endpoint || endpoint.disabled) {
    await failWithoutAttempt(db, claimed, endpoint ? `endpoint_disabled (${endpoint.disabledReason}): kept; replay or recover it once the endpoint is enabled` : "endpoint_deleted");
    message.ack();
    return false;
  }
  if (endpoint.rateLimitPerSecond !== null) {
    // The endpoint's own limit: a delivery over it gives its claim back and waits its turn, no attempt counted.
    const background: Promise<unknown>[] = [];
    const decision = await take(env.RATE_LIMITER, { policy: "webhook_endpoint", key: LIMITER_KEYS.webhookEndpoint(tenant.id, endpoint.id), limit: endpoint.rateLimitPerSecond, windowSeconds: 1 }, (p) => background.push(p));
    await Promise.allSettled(background);
    if (!decision.ok) {
      await db.batch([
        db
          .update(webhookMessages)
          .set({ status: "pending", attempts: sql`${webhookMessages.attempts} - 1`, leaseUntil: null })
          .where(and(isMessage(claimed), eq(webhookMessages.status, "delivering"), eq(webhookMessages.attempts, claimed.attempts))),
      ]);
      message.retry({ delaySeconds: Math.max(1, decision.resetSeconds) });
      return false;
    }
  }
  recorder.started();
  const config = loadConfig(env);
  const outcome = await liveSecrets(config.SECRETS_KEY, endpoint, now)
    .then((secrets) => attempt(endpoint, secrets, claimed, config.WEBHOOK_TIMEOUT_MS, now))
    .catch((err) => {
      recorder.abandoned();
      throw err;
    });
  const { retryIn, disabled } = await recorder.record(endpoint, claimed, outcome);
  tally[outcome.statusCode !== null && outcome.statusCode >= 200 && outcome.statusCode < 300 ? "succeeded" : retryIn === null ? "failed" : "retrying"]++;
  if (retryIn === null) message.ack();
  else message.retry({ delaySeconds: retryIn });
  return disabled;
}

/** The dead-letter queue: a message whose deliveries ran out is `failed` (kept for replay), never dropped. */
export async function consumeDeadWebhooks(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const log = createLogger({ queue: batch.queue });
  for (const message of batch.messages) {
    const body = DeliveryMessage.safeParse(message.body);
    if (!body.success) {
      message.ack();
      continue;
    }
    try {
      const tenant = await tenantById(env, body.data.tenant_id);
      const db = tenant && tenantDb(env, tenant);
      const m = db && (await db.select().from(webhookMessages).where(isMessage({ tenantId: tenant.id, id: body.data.message_id })).get());
      if (db && m) await failWithoutAttempt(db, m, `${m.lastError ?? "undeliverable"}; its queue deliveries ran out`);
      message.ack();
    } catch (err) {
      log.error("webhook.dead_letter_failed", { ...errorFields(err), webhook_message_id: body.data.message_id });
      message.retry({ delaySeconds: 60 });
    }
  }
}
