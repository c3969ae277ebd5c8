// The webhooks section of `npm run bench`: how soon after its commit an event reaches an endpoint,
// and deliveries per second through the real local queue, against a bare Worker whose consumer
// only POSTs each queued message to the same receiver.
import type { Miniflare } from "miniflare";

type Post = (url: URL, headers: Record<string, string>, body: Uint8Array) => Promise<{ status: number; body: string }>;

/** The receiver both deliver to: it notes when each delivery arrived (by its `data.id`, or its body's `id`). */
export const RECEIVER_SCRIPT = `
  const seen = new Map();
  export default {
    async fetch(req) {
      const url = new URL(req.url);
      if (url.pathname === "/__log") return Response.json(Object.fromEntries(seen));
      if (url.pathname === "/__reset") { seen.clear(); return Response.json({}); }
      const body = await req.json();
      // A run event by its run, a test event by its webhook-id, the floor's message by its own id.
      const id = body.data?.id ?? (body.data ? req.headers.get("webhook-id") : body.id);
      if (!seen.has(id)) seen.set(id, Date.now());
      return new Response("ok");
    },
  };`;

/** The bare floor: a Worker that queues one message per request and a consumer that POSTs each to the receiver. */
export const FLOOR_SCRIPT = `
  export default {
    async fetch(req, env) { await env.Q.send({ id: crypto.randomUUID() }); return new Response(null, { status: 202 }); },
    async queue(batch) {
      await Promise.all(batch.messages.map(async (m) => {
        await fetch("https://receiver.bench/hook", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id: m.body.id }) });
        m.ack();
      }));
    },
  };`;

export interface WebhookBench {
  mf: Miniflare;
  appUrl: URL;
  floorUrl: URL;
  host: string;
  token: string;
  agentId: string;
  projectId: string;
  tenantId: string;
  tenantBinding: string;
  post: Post;
  rounds: number;
}

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export async function measureWebhooks(b: WebhookBench): Promise<string[]> {
  const receiver = async (path: string) => (await b.mf.dispatchFetch(`https://receiver.bench${path}`)).json() as Promise<Record<string, number>>;
  const headers = { host: b.host, authorization: `Bearer ${b.token}`, "content-type": "application/json" };
  const json = (path: string, body: unknown) => b.post(new URL(path, b.appUrl), headers, new TextEncoder().encode(JSON.stringify(body)));
  const created = await json("/v1/webhooks/endpoints", { url: "https://receiver.bench/hook", event_types: ["run.created", "webhook.test"] });
  if (created.status !== 201) throw new Error(`endpoint: ${created.status} ${created.body}`);
  const endpointId = (JSON.parse(created.body) as { id: string }).id;
  const until = async (done: () => Promise<boolean>) => {
    const deadline = Date.now() + 300_000;
    while (!(await done())) {
      if (Date.now() > deadline) throw new Error("timed out waiting for deliveries");
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  // Commit to first attempt: a run is created (its run.created event commits with it), then the receiver's clock says when it arrived.
  const latencies: number[] = [];
  for (let i = 0; i < 30 * b.rounds; i++) {
    const committed = Date.now();
    const res = await json("/v1/runs", { agent_id: b.agentId, project_id: b.projectId, input: { text: `hook latency ${i}` } });
    if (res.status !== 202) throw new Error(`run: ${res.status} ${res.body}`);
    const runId = (JSON.parse(res.body) as { id: string }).id;
    await until(async () => (await receiver("/__log"))[runId] !== undefined);
    latencies.push((await receiver("/__log"))[runId]! - committed);
  }

  // Throughput of the consumers alone: N pending messages queued at once, until the receiver has had them all.
  const N = 1000;
  const rates = { tessera: [] as number[], bare: [] as number[] };
  const db = await b.mf.getD1Database(b.tenantBinding, "tessera");
  const webhooksQueue = await b.mf.getQueueProducer<unknown>("WEBHOOKS_QUEUE", "tessera");
  const floorQueue = await b.mf.getQueueProducer<unknown>("Q", "webhook-floor");
  const sendAll = async (queue: typeof floorQueue, bodies: unknown[]) => {
    for (let i = 0; i < bodies.length; i += 100) await queue.sendBatch(bodies.slice(i, i + 100).map((body) => ({ body, contentType: "json" as const })));
  };
  for (let round = 1; round <= b.rounds; round++) {
    await receiver("/__reset");
    const ids = Array.from({ length: N }, (_, i) => `whm_bench${round}x${String(i).padStart(5, "0")}`);
    const payload = (i: number) => JSON.stringify({ type: "webhook.test", timestamp: new Date().toISOString(), data: { endpoint_id: endpointId, message: `bench ${i}` } });
    await db.batch(
      ids.map((id, i) =>
        db
          .prepare("INSERT INTO webhook_messages (id, tenant_id, endpoint_id, event_id, event_type, payload, status) VALUES (?, ?, ?, ?, 'webhook.test', ?, 'pending')")
          .bind(id, b.tenantId, endpointId, `evt_bench${round}x${i}`, payload(i)),
      ),
    );
    let started = Date.now();
    await sendAll(webhooksQueue, ids.map((id) => ({ v: 1, tenant_id: b.tenantId, message_id: id })));
    await until(async () => Object.keys(await receiver("/__log")).length >= N);
    rates.tessera.push(N / ((Math.max(...Object.values(await receiver("/__log"))) - started) / 1000));
    await receiver("/__reset");
    started = Date.now();
    await sendAll(floorQueue, ids.map((id) => ({ id })));
    await until(async () => Object.keys(await receiver("/__log")).length >= N);
    rates.bare.push(N / ((Math.max(...Object.values(await receiver("/__log"))) - started) / 1000));
    console.log(`round ${round}  webhooks: ${rates.tessera.at(-1)!.toFixed(0)} deliveries/s, bare consumer ${rates.bare.at(-1)!.toFixed(0)}/s`);
  }
  console.log(`commit → first attempt: p50 ${percentile(latencies, 50)} ms, p95 ${percentile(latencies, 95)} ms`);
  return [
    `| commit → first attempt (${latencies.length} run.created events) | p50 ${percentile(latencies, 50)} ms, p95 ${percentile(latencies, 95)} ms | — | — |`,
    // The ratio is the median of each round's pair (run back to back), steadier on a shared machine than a ratio of means.
    `| deliveries per second (${N} messages queued at once, queue → consumer → endpoint; ratio: median of ${b.rounds} paired rounds) | ${mean(rates.tessera).toFixed(0)} | ${mean(rates.bare).toFixed(0)} | ${percentile(rates.tessera.map((r, i) => r / rates.bare[i]!), 50).toFixed(2)} |`,
  ];
}
