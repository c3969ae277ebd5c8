import { and, asc, eq, gt } from "drizzle-orm";
import type { Context } from "hono";
import type { AppEnv } from "../context";
import { outbox } from "../db/tenant/schema";
import { openStream } from "../limits/streams";
import { isFinished, type RunRow } from "./store";

/** How often an events stream looks for new events: soon after the last one, then less often while nothing happens. */
const POLL_MS = { first: 250, max: 2000 };
const HEARTBEAT_MS = 15_000;
/** A stream ends after this long even if the run has not; the client resumes with Last-Event-ID. */
const STREAM_MAX_MS = 10 * 60 * 1000;

/**
 * The run's events as server-sent events: every one so far (after `lastEventId`), then each new
 * one as it lands, until the run finishes or the stream has lasted STREAM_MAX_MS.
 */
export async function streamRunEvents(c: Context<AppEnv>, run: RunRow, lastEventId: string | undefined): Promise<Response> {
  const tenant = c.var.tenant;
  const db = c.var.db;
  let after = lastEventId && /^evt_[0-9a-z]{26}$/.test(lastEventId) ? lastEventId : "";
  const release = await openStream(c, STREAM_MAX_MS);
  const encoder = new TextEncoder();
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const pump = async () => {
    const started = Date.now();
    let lastWrite = Date.now();
    let finished = isFinished(run.status);
    let wait = POLL_MS.first;
    try {
      await writer.write(encoder.encode(`retry: 2000\n\n`));
      for (;;) {
        const events = await db
          .select()
          .from(outbox)
          .where(and(eq(outbox.tenantId, tenant.id), eq(outbox.subjectId, run.id), after ? gt(outbox.id, after) : undefined))
          .orderBy(asc(outbox.id))
          .limit(100);
        for (const e of events) {
          await writer.write(encoder.encode(`id: ${e.id}\nevent: ${e.type}\ndata: ${e.data}\n\n`));
          after = e.id;
          lastWrite = Date.now();
          if (e.type === "run.succeeded" || e.type === "run.failed" || e.type === "run.canceled") finished = true;
        }
        if (finished && events.length < 100) break;
        wait = events.length ? POLL_MS.first : Math.min(POLL_MS.max, wait * 2);
        if (Date.now() - started > STREAM_MAX_MS) break;
        if (Date.now() - lastWrite > HEARTBEAT_MS) {
          await writer.write(encoder.encode(`: keep-alive\n\n`));
          lastWrite = Date.now();
        }
        await new Promise((r) => setTimeout(r, wait));
      }
      await writer.close();
    } catch {
      // The client went away.
      await writer.abort().catch(() => {});
    } finally {
      await release();
    }
  };
  c.executionCtx.waitUntil(pump());
  return new Response(readable, { status: 200, headers: { "content-type": "text/event-stream", "cache-control": "no-store", "x-request-id": c.var.requestId } });
}
