// `npm run bench`: the full authenticated read path against a bare hello-world Worker, both
// in one workerd, measured side by side in one run (rounds alternate, so machine noise
// falls on both). Writes the table to BENCHMARKS.md.
import { execSync } from "node:child_process";
import http from "node:http";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { Miniflare } from "miniflare";
import { MAX_SOCKETS_PER_CREDENTIAL } from "../durable-objects/conversation-protocol.ts";
import { apiClient, appWorkerOptions, bundleWorker, preparePlatform } from "../scripts/local-platform.ts";
import { measureKnowledge } from "./knowledge.ts";
import { FLOOR_SCRIPT, measureWebhooks, RECEIVER_SCRIPT } from "./webhooks.ts";
import { measurePublishing, PUBLISH_FLOOR_SCRIPT } from "./publishing.ts";
import { measureCompliance } from "./compliance.ts";

const { values } = parseArgs({
  options: { seconds: { type: "string", default: "8" }, rounds: { type: "string", default: "2" }, connections: { type: "string", default: "16" }, out: { type: "string", default: "BENCHMARKS.md" } },
});
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const CONNECTIONS = Number(values.connections);
const TENANT_HOST = "bench.localhost";
const WS_ROUND_TRIPS = 300;
const FANOUT_SOCKETS = 100;
const FANOUT_MESSAGES = 100;
const DOWNLOAD_MIB = 1;
const UPLOAD_MIB = 20;
const UPLOADS = 6;
const RUNS = 200;
const RUN_CLIENTS = 8;
const agentPool = new http.Agent({ keepAlive: true, maxSockets: 64 });

console.log("bundling the Worker (wrangler deploy --dry-run)…");
const outdir = ".bench/dist";
await bundleWorker(outdir);
// BENCH_BEFORE=<git ref>: the same Worker as it was at that commit, over the same databases, measured
// beside today's read path in the same rounds: what a change added to the request path, side by side.
const before = process.env.BENCH_BEFORE;
if (before) {
  execSync(`git worktree remove --force .bench/before 2>/dev/null; git worktree add --detach .bench/before ${before}`, { stdio: "ignore", shell: "/bin/bash" });
  // Since the console, the config names a built assets directory; the bundle needs it to exist, not filled.
  mkdirSync(".bench/before/dist/console", { recursive: true });
  await bundleWorker(join(process.cwd(), ".bench/before-dist"), ".bench/before/wrangler.toml");
  // The bundle is all that is needed: no worktree is left behind.
  execSync("git worktree remove --force .bench/before", { stdio: "ignore" });
}
// The vector-search floor is a Worker of its own (it embeds with the local provider), bundled beside.
writeFileSync(
  ".bench/vector-floor.toml",
  `name = "vector-floor"\nmain = "../bench/floors/vector-floor.ts"\ncompatibility_date = "2026-08-01"\n[[durable_objects.bindings]]\nname = "FLOOR"\nclass_name = "VectorFloor"\n[[migrations]]\ntag = "v1"\nnew_sqlite_classes = ["VectorFloor"]\n`,
);
await bundleWorker(join(process.cwd(), ".bench/floor-dist"), ".bench/vector-floor.toml");
// The export floor streams a ZIP with the same library the platform uses: bundled the same way.
writeFileSync(".bench/zip-floor.toml", `name = "zip-floor"\nmain = "../bench/floors/zip-floor.ts"\ncompatibility_date = "2026-08-01"\n`);
await bundleWorker(join(process.cwd(), ".bench/zip-floor-dist"), ".bench/zip-floor.toml");
const { options: appOptions, bindings: appBindings, adminToken } = await appWorkerOptions();

const mf = new Miniflare({
  workers: [
    {
      ...(appOptions as object),
      name: "tessera",
      modules: true,
      scriptPath: join(outdir, "index.js"),
      bindings: appBindings,
      // Webhook deliveries (the Worker's only fetches) land on the bench's receiver.
      outboundService: "webhook-receiver",
      unsafeDirectSockets: [{ port: 0 }],
    },
    {
      // The same Worker over the same databases with rate limiting switched off, to measure what limiting costs.
      ...(appOptions as object),
      name: "tessera-unlimited",
      modules: true,
      scriptPath: join(outdir, "index.js"),
      bindings: { ...appBindings, RATE_LIMITS: "off" },
      queueConsumers: {},
      unsafeDirectSockets: [{ port: 0 }],
    },
    ...(before
      ? [
          {
            ...(appOptions as object),
            name: "tessera-before",
            modules: true,
            scriptPath: join(".bench/before-dist", "index.js"),
            bindings: appBindings,
            queueConsumers: {},
            unsafeDirectSockets: [{ port: 0 }],
          },
        ]
      : []),
    {
      // The floor of any route that reads D1: a bare Worker doing the same point read on the same database.
      name: "d1-floor",
      modules: true,
      compatibilityDate: appOptions.compatibilityDate,
      d1Databases: appOptions.d1Databases,
      script: `export default { async fetch(req, env) {
        const url = new URL(req.url);
        const db = env[url.searchParams.get("db")];
        const row = await db.prepare("SELECT * FROM projects WHERE id = ? AND tenant_id = ?").bind(url.searchParams.get("id"), url.searchParams.get("tenant")).first();
        return Response.json(row, { status: row ? 200 : 404 });
      } };`,
      unsafeDirectSockets: [{ port: 0 }],
    },
    {
      // The floor of the WebSocket path: a bare Durable Object that sends every frame to every socket it holds.
      name: "echo",
      modules: true,
      routes: ["echo.bench/*"],
      compatibilityDate: appOptions.compatibilityDate,
      // EchoStore first stores each frame in its SQLite, as a room stores a message before sending it
      // (and the runtime holds the frame until the write is durable): the floor of a stored message.
      durableObjects: { ECHO: { className: "Echo", useSQLite: true }, ECHO_STORE: { className: "EchoStore", useSQLite: true } },
      script: `export class Echo {
        constructor(state) { this.state = state; }
        async fetch() {
          const pair = new WebSocketPair();
          this.state.acceptWebSocket(pair[1]);
          return new Response(null, { status: 101, webSocket: pair[0] });
        }
        webSocketMessage(ws, frame) { for (const s of this.state.getWebSockets()) s.send(frame); }
      }
      export class EchoStore extends Echo {
        constructor(state) { super(state); state.storage.sql.exec("CREATE TABLE IF NOT EXISTS m (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT)"); }
        webSocketMessage(ws, frame) { this.state.storage.sql.exec("INSERT INTO m (body) VALUES (?)", frame); super.webSocketMessage(ws, frame); }
      }
      export default { fetch(req, env) {
        const url = new URL(req.url);
        const ns = url.pathname.startsWith("/stored") ? env.ECHO_STORE : env.ECHO;
        return ns.get(ns.idFromName(url.pathname)).fetch(req);
      } };`,
    },
    {
      // The floor of an artifact download or upload: a bare Worker on the same R2 bucket. `buffered`
      // reads the whole body first (what a naive upload does), the default streams it through.
      name: "r2-floor",
      modules: true,
      compatibilityDate: appOptions.compatibilityDate,
      r2Buckets: appOptions.r2Buckets,
      script: `export default { async fetch(req, env) {
        const url = new URL(req.url);
        const key = url.searchParams.get("key");
        if (req.method === "GET") {
          const object = await env.ARTIFACTS.get(key);
          return object ? new Response(object.body, { headers: { etag: object.httpEtag } }) : new Response("missing", { status: 404 });
        }
        const length = Number(req.headers.get("content-length"));
        const body = url.searchParams.has("buffered") ? await req.arrayBuffer() : req.body.pipeThrough(new FixedLengthStream(length));
        await env.ARTIFACTS.put(key, body);
        return new Response(null, { status: 201 });
      } };`,
      unsafeDirectSockets: [{ port: 0 }],
    },
    {
      // The floor of a queued run: a bare Worker that queues a message per request, and a consumer
      // (the same batch size as tessera-runs) that writes one D1 row per message.
      name: "queue-floor",
      modules: true,
      compatibilityDate: appOptions.compatibilityDate,
      d1Databases: { DB: "bench-queue-floor" },
      queueProducers: { Q: { queueName: "bench-queue-floor" } },
      queueConsumers: { "bench-queue-floor": { maxBatchSize: 10 } },
      script: `export default {
        async fetch(req, env) { await env.Q.send({ id: crypto.randomUUID() }); return new Response(null, { status: 202 }); },
        async queue(batch, env) {
          await env.DB.batch(batch.messages.map((m) => env.DB.prepare("INSERT INTO done (id) VALUES (?)").bind(m.body.id)));
          batch.ackAll();
        },
      };`,
      unsafeDirectSockets: [{ port: 0 }],
    },
    {
      name: "webhook-receiver",
      modules: true,
      routes: ["receiver.bench/*"],
      compatibilityDate: appOptions.compatibilityDate,
      script: RECEIVER_SCRIPT,
    },
    {
      // The floor of a webhook delivery: queue a message, and a consumer that POSTs it to the same receiver.
      name: "webhook-floor",
      modules: true,
      compatibilityDate: appOptions.compatibilityDate,
      queueProducers: { Q: { queueName: "bench-webhook-floor" } },
      queueConsumers: { "bench-webhook-floor": { maxBatchSize: 100, maxBatchTimeout: 1 } },
      outboundService: "webhook-receiver",
      script: FLOOR_SCRIPT,
      unsafeDirectSockets: [{ port: 0 }],
    },
    {
      // The floor of publishing: a DO alarm at the due time queues the messages; a consumer (the same batch settings as tessera-publish) writes a row each.
      name: "publish-floor",
      modules: true,
      compatibilityDate: appOptions.compatibilityDate,
      d1Databases: { DB: "bench-publish-floor" },
      durableObjects: { CLOCK: { className: "Clock", useSQLite: true } },
      queueProducers: { Q: { queueName: "bench-publish-floor" } },
      queueConsumers: { "bench-publish-floor": { maxBatchSize: 50, maxBatchTimeout: 1 } },
      script: PUBLISH_FLOOR_SCRIPT,
      unsafeDirectSockets: [{ port: 0 }],
    },
    {
      name: "vector-floor",
      modules: true,
      compatibilityDate: appOptions.compatibilityDate,
      scriptPath: join(".bench/floor-dist", "vector-floor.js"),
      durableObjects: { FLOOR: { className: "VectorFloor", useSQLite: true } },
      unsafeDirectSockets: [{ port: 0 }],
    },
    {
      // The floor of a data export: the same rows, messages (from the platform's own rooms) and R2 bytes streamed into a ZIP.
      name: "zip-floor",
      modules: true,
      compatibilityDate: appOptions.compatibilityDate,
      scriptPath: join(".bench/zip-floor-dist", "zip-floor.js"),
      d1Databases: appOptions.d1Databases,
      r2Buckets: appOptions.r2Buckets,
      durableObjects: { ROOM: { className: "ConversationRoom", scriptName: "tessera" } },
      unsafeDirectSockets: [{ port: 0 }],
    },
    {
      name: "hello",
      modules: true,
      compatibilityDate: appOptions.compatibilityDate,
      script: `export default { fetch() { return new Response("hello world"); } };`,
      unsafeDirectSockets: [{ port: 0 }],
    },
  ],
  // The Worker logs one JSON line per request, as in production; drop them here.
  handleRuntimeStdio: (stdout: NodeJS.ReadableStream, stderr: NodeJS.ReadableStream) => {
    stdout.resume();
    stderr.resume();
  },
});
await mf.ready;

const { api, token: jwt, tenantId } = await preparePlatform(mf, adminToken, "bench");
const listed = (await api("http://localhost/v1/platform/tenants", { token: adminToken })).data as { id: string; db_binding: string }[];
const binding = listed.find((t) => t.id === tenantId)!.db_binding;
const project = await api(`http://${TENANT_HOST}/v1/projects`, { method: "POST", token: jwt, body: JSON.stringify({ name: "Benchmarked" }) });
const key = await api(`http://${TENANT_HOST}/v1/api-keys`, { method: "POST", token: jwt, body: JSON.stringify({ name: "bench", scopes: ["projects:read"] }) });

const appUrl = await mf.unsafeGetDirectURL("tessera");
const unlimitedUrl = await mf.unsafeGetDirectURL("tessera-unlimited");
const helloUrl = await mf.unsafeGetDirectURL("hello");
const floorUrl = await mf.unsafeGetDirectURL("d1-floor");
const path = `/v1/projects/${project.id as string}`;

interface Target {
  name: string;
  url: string;
  headers?: Record<string, string>;
}
const targets: Target[] = [
  { name: "bare hello-world Worker", url: helloUrl.href },
  { name: "bare Worker + the same D1 point read", url: `${floorUrl.href}?db=${binding}&tenant=${tenantId}&id=${project.id as string}` },
  { name: "GET /health (router, request id, log line)", url: new URL("/health", appUrl).href },
  { name: "GET /v1/projects/{id}, access token (JWT)", url: new URL(path, appUrl).href, headers: { host: TENANT_HOST, authorization: `Bearer ${jwt}` } },
  { name: "GET /v1/projects/{id}, API key", url: new URL(path, appUrl).href, headers: { host: TENANT_HOST, authorization: `Bearer ${key.key as string}` } },
  { name: "GET /v1/projects/{id}, JWT, rate limiting off", url: new URL(path, unlimitedUrl).href, headers: { host: TENANT_HOST, authorization: `Bearer ${jwt}` } },
];
if (before) {
  const beforeUrl = await mf.unsafeGetDirectURL("tessera-before");
  targets.push(
    { name: `GET /v1/projects/{id}, JWT, at ${before}`, url: new URL(path, beforeUrl).href, headers: { host: TENANT_HOST, authorization: `Bearer ${jwt}` } },
    { name: `GET /v1/projects/{id}, API key, at ${before}`, url: new URL(path, beforeUrl).href, headers: { host: TENANT_HOST, authorization: `Bearer ${key.key as string}` } },
  );
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const COMPLIANCE_HEADING = "## Compliance: exporting a tenant, and erasing it";

interface Sample {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
}
const samples = new Map<string, Sample[]>(targets.map((t) => [t.name, []]));

async function measure(t: Target): Promise<Sample> {
  const result = await autocannon({ url: t.url, headers: t.headers, connections: CONNECTIONS, duration: SECONDS });
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, non2xx: result.non2xx + result.errors };
}

// BENCH_MATCH=<regex>: only the read targets whose name matches (a focused side-by-side loop).
if (process.env.BENCH_MATCH) {
  const keep = new RegExp(process.env.BENCH_MATCH);
  targets.splice(0, targets.length, ...targets.filter((t) => keep.test(t.name)));
}
// Warm both, then alternate rounds so drift on a shared machine lands on every target alike.
if (process.env.BENCH_ONLY && process.env.BENCH_ONLY !== "reads") {
  // BENCH_ONLY=artifacts|runs|ws|reads: one section, printed, for a quick loop while working on it; writes nothing.
  const only = { runs: measureRuns, ws: measureWebSockets, artifacts: measureArtifacts, knowledge: async () => Object.values(await knowledge()).flat(), webhooks, publishing, compliance }[process.env.BENCH_ONLY] ?? measureArtifacts;
  console.log((await only()).join("\n"));
  await mf.dispose();
  process.exit(0);
}
for (const t of targets) await autocannon({ url: t.url, headers: t.headers, connections: CONNECTIONS, duration: 2 });
for (let round = 1; round <= ROUNDS; round++) {
  for (const t of targets) {
    const s = await measure(t);
    samples.get(t.name)!.push(s);
    console.log(`round ${round}  ${t.name.padEnd(44)} ${s.rps.toFixed(0).padStart(7)} req/s  p50 ${s.p50} ms  p99 ${s.p99} ms${s.non2xx ? `  (${s.non2xx} non-2xx!)` : ""}`);
  }
}
if (process.env.BENCH_ONLY === "reads") {
  for (const t of targets) console.log(`| ${t.name} | ${mean(samples.get(t.name)!.map((s) => s.rps)).toFixed(0)} |`);
  await mf.dispose();
  process.exit(0);
}
const wsRows = await measureWebSockets();
const artifactRows = await measureArtifacts();
const runRows = await measureRuns();
const knowledgeRows = await knowledge();
const webhookRows = await webhooks();
const publishingRows = await publishing();
const complianceRows = await compliance();
await mf.dispose();

const throughput = (i: number) => mean(samples.get(targets[i]!.name)!.map((s) => s.rps));
const [bare, floor] = [throughput(0), throughput(1)];
const rows = targets.map((t, i) => {
  const s = samples.get(t.name)!;
  const rps = throughput(i);
  const bad = s.reduce((a, x) => a + x.non2xx, 0);
  return `| ${t.name} | ${rps.toFixed(0)} | ${(rps / bare).toFixed(2)} | ${(rps / floor).toFixed(2)} | ${mean(s.map((x) => x.p50)).toFixed(1)} | ${mean(s.map((x) => x.p99)).toFixed(1)} | ${bad} |`;
});
const table = [
  "| target | req/s | × bare | × D1 floor | p50 ms | p99 ms | non-2xx |",
  "|---|---:|---:|---:|---:|---:|---:|",
  ...rows,
].join("\n");
const section = `## Authenticated point read vs a bare Worker

Command: \`npm run bench\` (${ROUNDS} alternating rounds of ${SECONDS} s per target, ${CONNECTIONS} connections, autocannon on the same 2-core machine as workerd; ${new Date().toISOString().slice(0, 10)}).
Both Workers run in one workerd (Miniflare, local D1/KV). The full path is request id, host → tenant (isolate cache → KV → control D1),
credential check (ES256 verify, or API key hash lookup in the control D1), rate limits (tenant and member or key, leased from their RateLimiters),
permission check, zod validation, and a drizzle read of the tenant's own D1. The last row is the same Worker with RATE_LIMITS=off.

${table}

Reading it: \`× bare\` is throughput over the hello-world Worker's; \`× D1 floor\` over a bare Worker
that does nothing but the same D1 point read. Locally, D1 is simulated by a Durable Object over
SQLite in the same workerd, and one database answers one query at a time, so that floor is far
below a bare Worker and bounds every route that reads a tenant's data. The platform's own share of
the cost is the gap between the floor and the full path, and between the bare Worker and /health.
Most of /health's gap is the one JSON log line per request, which locally travels from workerd to
this Node process over a pipe on the same two cores (with the line switched off, /health measured
0.75 × bare and the JWT read 0.70 × the D1 floor in a one-round run on 2026-11-22).
`;
const wsSection = `## Conversation WebSockets vs a bare Durable Object

Command: \`npm run bench\` (same run). Round trip: one client sends ${WS_ROUND_TRIPS} frames one after another and waits for each to come back.
Fan-out: one of ${FANOUT_SOCKETS} sockets in one room sends ${FANOUT_MESSAGES} frames one after another; the time is until the last socket has each.
Tessera's path validates the frame, stores the message in the room's SQLite, schedules the D1 metadata update and broadcasts;
the bare Durable Object only sends the frame back to every socket it holds. Clients connect through Miniflare's dispatchFetch.
With 100 fan-out samples, p99 is the second-worst one: a single pause (a garbage collection, a D1 write landing) shows there.

| measure | Tessera p50 ms | Tessera p99 ms | bare DO p50 ms | bare DO p99 ms | × bare (p50) |
|---|---:|---:|---:|---:|---:|
${wsRows.join("\n")}
`;
const artifactSection = `## Artifacts: streaming through the API vs a bare Worker on R2

Command: \`npm run bench\` (same run). Downloads: autocannon, ${CONNECTIONS} connections, ${SECONDS} s per target, alternating rounds, of a
${DOWNLOAD_MIB} MiB version (the API path adds host routing, auth, rate limits, the version's row in the tenant's D1, ETag and Range handling).
Uploads: ${UPLOADS} concurrent uploads of ${UPLOAD_MIB} MiB each, ${ROUNDS} rounds; memory is workerd's peak resident set above what it held
just before, sampled every 20 ms, averaged over the rounds (a noisy measure: V8 returns memory to the system lazily). "Bare, buffered" reads the whole body before writing it, as an upload that is not streamed would.

| measure | Tessera | bare, streamed | × bare | bare, buffered |
|---|---:|---:|---:|---:|
${artifactRows.join("\n")}

Reading it: an upload through the API is hashed (SHA-256) on its way to R2 by a TransformStream, so every chunk
passes through JavaScript; the bare Worker pipes the body to R2 without touching it. That costs throughput but keeps
memory bounded by the chunks in flight, unlike reading the body first ("buffered"), whose memory grows with the uploads.
Hashing a \`tee()\` of the body instead measured faster (0.77 × bare on 2026-11-23) but let the slower branch buffer
(+178 MiB in one round), which a 128 MB isolate cannot afford, so it is not used.
`;
const runSection = `## Queued runs vs a bare queue consumer

Command: \`npm run bench\` (same run). ${RUNS} runs posted as fast as ${RUN_CLIENTS} clients can, each executed by the \`tessera-runs\`
consumer through the real local queue (batches of 10): claim and token reservation, the local model (answering at once), the output
streamed to R2, and the finishing transaction (run, outbox event, usage, quota, artifact), then the credit debit.
The floor is a bare Worker that queues a message per request and a consumer that writes one D1 row per message.
"Done" is the time from the first request until the last run has SUCCEEDED (the last row is written).

| measure | Tessera | bare queue + D1 | × bare |
|---|---:|---:|---:|
${runRows.join("\n")}

Reading it: accepting a run is a full authenticated write (JWT, rate limits, one batch reading project, agent, prompt
versions and quota, one batch writing the run, its event and its audit entry, then the queue send) against the floor's
queue send alone. Executing one is two reads and two transactions in the tenant's database plus the credit debit in
the control database, where the floor writes one row per message in one batch per ten. Locally every database answers
one statement at a time, and runs share one tenant's database, so those round trips are what this measures.
`;
const knowledgeSection = `## Knowledge: ingestion, upload to searchable, and hybrid search vs a bare cosine query

Command: \`npm run bench\` (same run; \`BENCH_ONLY=knowledge npm run bench\` for this section alone). Documents are generated text
(a fixed seed), chunked at 100 tokens, embedded by the local provider and indexed by the local vector index and FTS5, ingested
by the \`tessera-ingest\` consumer through the real local queue. Search: ${ROUNDS} rounds of 60 four-word queries, one at a time,
alternating Tessera's hybrid search (authenticated request, query embedding metered, FTS5 bm25 and the vector index in parallel
paths, candidates read back from D1, fused) with the floor: a bare Worker whose Durable Object holds the same vectors in its
SQLite and answers one brute-force cosine query (embedding the query the same way).

| ingestion | documents/s | chunks/s |
|---|---:|---:|
${knowledgeRows.ingest.join("\n")}

| read-your-writes | p50 | p95 |
|---|---:|---:|
${knowledgeRows.searchable.join("\n")}

| measure | Tessera hybrid p50 ms | p95 ms | bare cosine p50 ms | p95 ms | × bare (p95) |
|---|---:|---:|---:|---:|---:|
${knowledgeRows.search.join("\n")}
`;
const webhookSection = `## Webhooks: commit to first attempt, and deliveries per second vs a bare queue consumer

Command: \`npm run bench\` (same run; \`BENCH_ONLY=webhooks npm run bench\` for this section alone). Latency: a run is created
(its \`run.created\` event commits with it) and the receiver notes when the signed delivery arrived, one at a time. Throughput:
1000 pending messages queued at once, delivered by the \`tessera-webhooks\` consumer (read, claim, sign, POST, record the
attempts, one flush per batch of 100), against a bare consumer that only POSTs each message of the same queue load to the same receiver;
the ratio is the median of the rounds' pairs.

| measure | Tessera | bare consumer | × bare |
|---|---:|---:|---:|
${webhookRows.join("\n")}
`;
const publishingSection = `## Publishing: 1,000 posts due in one minute, and approving a post

Command: \`npm run bench\` (same run; \`BENCH_ONLY=publishing npm run bench\` for this section alone). 1,000 approved posts
are scheduled for the same instant 20 s ahead; the tenant's scheduler alarm claims them, the \`tessera-publish\` consumer
publishes each to the local sandbox; measured from the due time to the last \`published_at\`, checked for duplicates. The
floor: a bare Durable Object alarm at the same instant queues 1,000 messages to a consumer (same batch settings) writing one
D1 row each. Approve: 200 posts approved one request at a time, beside the bare Worker's D1 point read; and 200 more by
a \`client\` member limited to the project (every read narrowed to its projects), interleaved with them.

| measure | Tessera | bare floor | floor ÷ Tessera | target | met? |
|---|---:|---:|---:|---:|---|
${publishingRows.join("\n")}
`;
const complianceSection = `${COMPLIANCE_HEADING}

Command: \`npm run bench\` (same run; \`BENCH_ONLY=compliance npm run bench\` for this section alone). A tenant is filled at two sizes
(20 conversations' messages posted through the API; one run made through the queue and copied row by row; 5 MiB artifact
uploads), and exported whole at each: \`POST /v1/exports {scope: "tenant"}\` until \`GET\` says ready (the \`tessera-compliance\`
consumer writes every table, every room's messages and every artifact into one ZIP with a manifest, hashing each file,
cut into 5 MiB parts of an R2 multipart upload). The floor is a bare Worker streaming the same rows, messages and bytes into
a ZIP with the same library as its response (no hashing, manifest, progress or upload). Memory is workerd's peak resident
set above what it held just before, sampled every 20 ms. Times are the best of the rounds, memory the worst. Then the
tenant is suspended and erased.

| measure | Tessera | bare ZIP stream | × bare |
|---|---:|---:|---:|
${complianceRows.join("\n")}
`;
writeFileSync(values.out, `# Benchmarks\n\nMeasured side by side in one run; compare the ratios, not the absolute numbers (the machines are shared and noisy).\n\n${section}\n${wsSection}\n${artifactSection}\n${runSection}\n${knowledgeSection}\n${webhookSection}\n${publishingSection}\n${complianceSection}`);
console.log(`\n${table}\n\nwritten to ${values.out}`);


interface BenchSocket {
  send(data: string): void;
  addEventListener(type: "message", listener: (e: { data: unknown }) => void): void;
  accept(): void;
  close(): void;
}

async function openSocket(url: string, headers: Record<string, string> = {}): Promise<BenchSocket> {
  const res = await mf.dispatchFetch(url, { headers: { upgrade: "websocket", ...headers } });
  const ws = (res as unknown as { webSocket: BenchSocket | null }).webSocket;
  if (!ws) throw new Error(`no WebSocket from ${url}: ${res.status} ${await res.text()}`);
  ws.accept();
  return ws;
}

function percentile(xs: number[], p: number): number {
  return [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
}

/** Sends `count` frames from `sender`, each after the previous reached all of `receivers`; returns each one's latency. */
async function timeFrames(sender: BenchSocket, receivers: BenchSocket[], count: number, frame: (i: number) => string, matches: (data: string, i: number) => boolean): Promise<number[]> {
  const latencies: number[] = [];
  let current = -1;
  let pending = 0;
  let resolveAll: (() => void) | undefined;
  for (const r of receivers) {
    r.addEventListener("message", (e) => {
      if (current >= 0 && matches(String(e.data), current) && --pending === 0) resolveAll?.();
    });
  }
  for (let i = 0; i < count; i++) {
    const done = new Promise<void>((resolve) => (resolveAll = resolve));
    current = i;
    pending = receivers.length;
    const started = performance.now();
    sender.send(frame(i));
    await done;
    latencies.push(performance.now() - started);
  }
  return latencies;
}

async function measureWebSockets(): Promise<string[]> {
  const conversation = await api(`http://${TENANT_HOST}/v1/conversations`, { method: "POST", token: jwt, body: JSON.stringify({ project_id: project.id }) });
  const connectUrl = `http://${TENANT_HOST}/v1/conversations/${conversation.id as string}/connect`;
  const auth = { authorization: `Bearer ${jwt}` };
  const tessera = (i: number) => JSON.stringify({ type: "message", content: `frame ${i}`, client_id: `c${i}-${Math.random()}` });
  const tesseraMatch = (data: string, i: number) => data.includes(`"content":"frame ${i}"`);
  const bare = (i: number) => `frame ${i}`;
  const bareMatch = (data: string, i: number) => data === `frame ${i}`;
  const row = (name: string, t: number[], b: number[]) =>
    `| ${name} | ${percentile(t, 50).toFixed(2)} | ${percentile(t, 99).toFixed(2)} | ${percentile(b, 50).toFixed(2)} | ${percentile(b, 99).toFixed(2)} | ${(percentile(t, 50) / percentile(b, 50)).toFixed(1)} |`;

  const one = await openSocket(connectUrl, auth);
  const echoOne = await openSocket("http://echo.bench/round-trip");
  const storedOne = await openSocket("http://echo.bench/stored/round-trip");
  const rtT = await timeFrames(one, [one], WS_ROUND_TRIPS, tessera, tesseraMatch);
  const rtB = await timeFrames(echoOne, [echoOne], WS_ROUND_TRIPS, bare, bareMatch);
  const rtS = await timeFrames(storedOne, [storedOne], WS_ROUND_TRIPS, bare, bareMatch);
  storedOne.close();
  console.log(`ws round trip  tessera p50 ${percentile(rtT, 50).toFixed(2)} ms  bare p50 ${percentile(rtB, 50).toFixed(2)} ms  bare+stored p50 ${percentile(rtS, 50).toFixed(2)} ms`);

  // A credential holds at most MAX_SOCKETS_PER_CREDENTIAL sockets on a conversation: the room's listeners use API keys, a few sockets each.
  const keys = await Promise.all(
    Array.from({ length: Math.ceil(FANOUT_SOCKETS / MAX_SOCKETS_PER_CREDENTIAL) }, async (_, i) => {
      const created = await api(`http://${TENANT_HOST}/v1/api-keys`, { method: "POST", token: jwt, body: JSON.stringify({ name: `listener ${i}`, scopes: ["conversations:read"] }) });
      return created.key as string;
    }),
  );
  const listener = (i: number) => openSocket(connectUrl, { authorization: `Bearer ${keys[Math.floor(i / MAX_SOCKETS_PER_CREDENTIAL)]}` });
  const room = [one, ...(await Promise.all(Array.from({ length: FANOUT_SOCKETS - 1 }, (_, i) => listener(i))))];
  const echoRoom = [echoOne, ...(await Promise.all(Array.from({ length: FANOUT_SOCKETS - 1 }, () => openSocket("http://echo.bench/round-trip"))))];
  const foT = await timeFrames(one, room, FANOUT_MESSAGES, tessera, tesseraMatch);
  const foB = await timeFrames(echoOne, echoRoom, FANOUT_MESSAGES, bare, bareMatch);
  console.log(`ws fan-out    tessera p50 ${percentile(foT, 50).toFixed(2)} ms  bare p50 ${percentile(foB, 50).toFixed(2)} ms`);
  for (const s of [...room, ...echoRoom]) s.close();
  return [
    row("round trip, 1 client", rtT, rtB),
    `| round trip, 1 client, × a bare DO that stores each frame first | ${percentile(rtT, 50).toFixed(2)} | ${percentile(rtT, 99).toFixed(2)} | ${percentile(rtS, 50).toFixed(2)} | ${percentile(rtS, 99).toFixed(2)} | ${(percentile(rtT, 50) / percentile(rtS, 50)).toFixed(1)} |`,
    row(`fan-out to ${FANOUT_SOCKETS} sockets`, foT, foB),
  ];
}


/** workerd's resident set, in MiB (miniflare runs one workerd for every Worker here). */
function workerdRssMiB(): number {
  const pids = execSync(`pgrep -P ${process.pid} workerd || pgrep workerd`).toString().trim().split("\n").filter(Boolean);
  return pids.reduce((sum, pid) => {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    return sum + Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  }, 0);
}

/** Runs `work` while sampling workerd's memory; returns its duration and the peak above the level before it. */
async function withPeakMemory(work: () => Promise<void>): Promise<{ ms: number; peakMiB: number }> {
  await new Promise((r) => setTimeout(r, 300));
  const before = workerdRssMiB();
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, workerdRssMiB())), 20);
  const started = performance.now();
  await work();
  const ms = performance.now() - started;
  clearInterval(timer);
  peak = Math.max(peak, workerdRssMiB());
  return { ms, peakMiB: peak - before };
}

async function measureArtifacts(): Promise<string[]> {
  const r2Url = await mf.unsafeGetDirectURL("r2-floor");
  const tenantHeaders = { host: TENANT_HOST, authorization: `Bearer ${jwt}` };
  // One version to download, uploaded through the API; the bare Worker reads the same R2 object.
  const payload = new Uint8Array(DOWNLOAD_MIB * 1024 * 1024).map((_, i) => i % 251);
  const uploaded = JSON.parse(
    (await httpPost(new URL(`/v1/artifacts?project_id=${project.id as string}&kind=video&name=bench`, appUrl), { ...tenantHeaders, "content-type": "application/octet-stream" }, payload)).body,
  ) as { id: string };
  const r2Key = (await (await mf.getR2Bucket("ARTIFACTS", "tessera")).list({ prefix: `tenants/${tenantId}/artifacts/${uploaded.id}/` })).objects[0]!.key;
  const downloads: Target[] = [
    { name: "api", url: new URL(`/v1/artifacts/${uploaded.id}/versions/1/content`, appUrl).href, headers: tenantHeaders },
    { name: "bare", url: `${r2Url.href}?key=${encodeURIComponent(r2Key)}` },
  ];
  const rps: Record<string, number[]> = { api: [], bare: [] };
  for (let round = 1; round <= ROUNDS; round++) {
    for (const t of downloads) {
      const s = await measure(t);
      if (s.non2xx) throw new Error(`${t.name} download: ${s.non2xx} non-2xx`);
      rps[t.name]!.push(s.rps);
      console.log(`round ${round}  download ${DOWNLOAD_MIB} MiB ${t.name.padEnd(5)} ${s.rps.toFixed(0)} req/s`);
    }
  }

  const body = new Uint8Array(UPLOAD_MIB * 1024 * 1024).map((_, i) => i % 253);
  const uploadTo = async (kind: "api" | "streamed" | "buffered") => {
    await Promise.all(
      Array.from({ length: UPLOADS }, async (_, i) => {
        const res =
          kind === "api"
            ? await httpPost(new URL(`/v1/artifacts?project_id=${project.id as string}&kind=video&name=upload-${i}`, appUrl), { ...tenantHeaders, "content-type": "video/mp4" }, body)
            : await httpPost(new URL(`${r2Url.href}?key=bench/${kind}/${i}-${crypto.randomUUID()}${kind === "buffered" ? "&buffered" : ""}`), {}, body);
        if (res.status !== 201) throw new Error(`${kind} upload: ${res.status} ${res.body}`);
      }),
    );
  };
  const uploads: Record<string, { ms: number; peakMiB: number }[]> = { api: [], streamed: [], buffered: [] };
  for (let round = 1; round <= ROUNDS; round++) {
    for (const kind of ["api", "streamed", "buffered"] as const) {
      const m = await withPeakMemory(() => uploadTo(kind));
      uploads[kind]!.push(m);
      console.log(`round ${round}  upload ${UPLOADS}×${UPLOAD_MIB} MiB ${kind.padEnd(8)} ${m.ms.toFixed(0)} ms  peak +${m.peakMiB.toFixed(0)} MiB`);
    }
  }
  const api = mean(rps.api!);
  const bare = mean(rps.bare!);
  const mibps = (kind: string) => (UPLOADS * UPLOAD_MIB) / (mean(uploads[kind]!.map((m) => m.ms)) / 1000);
  const peak = (kind: string) => mean(uploads[kind]!.map((m) => m.peakMiB));
  return [
    `| download ${DOWNLOAD_MIB} MiB, req/s | ${api.toFixed(0)} | ${bare.toFixed(0)} | ${(api / bare).toFixed(2)} | |`,
    `| upload ${UPLOADS} × ${UPLOAD_MIB} MiB at once, MiB/s | ${mibps("api").toFixed(0)} | ${mibps("streamed").toFixed(0)} | ${(mibps("api") / mibps("streamed")).toFixed(2)} | ${mibps("buffered").toFixed(0)} |`,
    `| upload ${UPLOADS} × ${UPLOAD_MIB} MiB at once, peak workerd memory above idle, MiB | ${peak("api").toFixed(0)} | ${peak("streamed").toFixed(0)} | ${(peak("api") / Math.max(1, peak("streamed"))).toFixed(2)} | ${peak("buffered").toFixed(0)} |`,
  ];
}

/** Posts `count` requests from `clients` concurrent clients. */
async function webhooks() {
  const agent = await api(`http://${TENANT_HOST}/v1/agents`, { method: "POST", token: jwt, body: JSON.stringify({ project_id: project.id, name: "Hooked" }) });
  return measureWebhooks({
    mf,
    appUrl,
    floorUrl: await mf.unsafeGetDirectURL("webhook-floor"),
    host: TENANT_HOST,
    token: jwt,
    agentId: agent.id as string,
    projectId: project.id as string,
    tenantId,
    tenantBinding: binding,
    post: httpPost,
    rounds: ROUNDS,
  });
}

async function publishing() {
  const scoped = await api(`http://${TENANT_HOST}/v1/api-keys`, { method: "POST", token: jwt, body: JSON.stringify({ name: "bench publishing", scopes: ["projects:write", "posts:read", "posts:write", "posts:review"] }) });
  const headers = { host: TENANT_HOST, authorization: `Bearer ${scoped.key as string}`, "content-type": "application/json" };
  // A client limited to the project, to approve as a member whose every read is narrowed to its projects.
  const invitation = await api(`http://${TENANT_HOST}/v1/invitations`, { method: "POST", token: jwt, body: JSON.stringify({ email: "client@bench.test", role: "client", projects: [project.id] }) });
  const client = await api(`http://${TENANT_HOST}/v1/invitations/${invitation.token as string}/accept`, { method: "POST", body: JSON.stringify({ name: "Bench client", password: "correct horse battery" }) });
  // Node's fetch will not send a Host header: http.request does (the tenant is read from it).
  const call = (method: string, path: string, body?: unknown, token?: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const bytes = body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body));
      const auth = token ? { authorization: `Bearer ${token}` } : {};
      const req = http.request(new URL(path, appUrl), { method, agent: agentPool, headers: { ...headers, ...auth, "content-length": String(bytes.byteLength) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end(bytes);
    });
  return measurePublishing({
    mf,
    call,
    clientToken: client.access_token as string,
    floorUrl: await mf.unsafeGetDirectURL("publish-floor"),
    projectId: project.id as string,
    tenantBinding: binding,
    floorRead: async () => void (await (await fetch(`${floorUrl.href}?db=${binding}&tenant=${tenantId}&id=${project.id as string}`)).text()),
  });
}

async function compliance() {
  return measureCompliance({ mf, api: apiClient(mf), post: httpPost, adminToken, appUrl, floorUrl: await mf.unsafeGetDirectURL("zip-floor"), withPeakMemory, rounds: ROUNDS });
}

async function knowledge() {
  return measureKnowledge({
    mf,
    appUrl,
    floorUrl: await mf.unsafeGetDirectURL("vector-floor"),
    host: TENANT_HOST,
    token: jwt,
    projectId: project.id as string,
    tenantBinding: binding,
    post: httpPost,
    rounds: ROUNDS,
  });
}

async function post(count: number, clients: number, send: (i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (next < count) await send(next++);
  }));
}

async function until(done: () => Promise<boolean>) {
  const deadline = Date.now() + 300_000;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error("timed out waiting for queued work");
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function measureRuns(): Promise<string[]> {
  const agent = await api(`http://${TENANT_HOST}/v1/agents`, { method: "POST", token: jwt, body: JSON.stringify({ project_id: project.id, name: "Bench writer" }) });
  const tenantDb = await mf.getD1Database(binding, "tessera");
  const floorDb = await mf.getD1Database("DB", "queue-floor");
  await floorDb.exec("CREATE TABLE IF NOT EXISTS done (id TEXT PRIMARY KEY)");
  const floorUrl = await mf.unsafeGetDirectURL("queue-floor");
  const results = { tessera: [] as { accept: number; done: number }[], bare: [] as { accept: number; done: number }[] };
  for (let round = 1; round <= ROUNDS; round++) {
    // Tessera
    const before = (await tenantDb.prepare("SELECT count(*) AS n FROM runs WHERE status = 'SUCCEEDED'").first<{ n: number }>())!.n;
    let started = performance.now();
    await post(RUNS, RUN_CLIENTS, async (i) => {
      const body = JSON.stringify({ agent_id: agent.id, project_id: project.id, input: { text: `bench run ${round}-${i}` } });
      const res = await httpPost(new URL("/v1/runs", appUrl), { host: TENANT_HOST, authorization: `Bearer ${jwt}`, "content-type": "application/json" }, new TextEncoder().encode(body));
      if (res.status !== 202) throw new Error(`POST /v1/runs: ${res.status} ${res.body}`);
    });
    const tAccept = performance.now() - started;
    await until(async () => (await tenantDb.prepare("SELECT count(*) AS n FROM runs WHERE status = 'SUCCEEDED'").first<{ n: number }>())!.n >= before + RUNS);
    results.tessera.push({ accept: tAccept, done: performance.now() - started });
    const failed = (await tenantDb.prepare("SELECT count(*) AS n FROM runs WHERE status <> 'SUCCEEDED'").first<{ n: number }>())!.n;
    if (failed) throw new Error(`${failed} runs did not succeed`);
    // The bare queue
    const floorBefore = (await floorDb.prepare("SELECT count(*) AS n FROM done").first<{ n: number }>())!.n;
    started = performance.now();
    await post(RUNS, RUN_CLIENTS, async () => {
      const res = await httpPost(floorUrl, {}, new Uint8Array(0));
      if (res.status !== 202) throw new Error(`queue floor: ${res.status}`);
    });
    const bAccept = performance.now() - started;
    await until(async () => (await floorDb.prepare("SELECT count(*) AS n FROM done").first<{ n: number }>())!.n >= floorBefore + RUNS);
    results.bare.push({ accept: bAccept, done: performance.now() - started });
    console.log(`round ${round}  ${RUNS} runs: accepted in ${tAccept.toFixed(0)} ms, done in ${results.tessera.at(-1)!.done.toFixed(0)} ms; bare queue ${bAccept.toFixed(0)} / ${results.bare.at(-1)!.done.toFixed(0)} ms`);
  }
  const perSecond = (xs: { accept: number; done: number }[], k: "accept" | "done") => RUNS / (mean(xs.map((x) => x[k])) / 1000);
  const row = (name: string, k: "accept" | "done") =>
    `| ${name} | ${perSecond(results.tessera, k).toFixed(0)} | ${perSecond(results.bare, k).toFixed(0)} | ${(perSecond(results.tessera, k) / perSecond(results.bare, k)).toFixed(2)} |`;
  return [row("accepted (POST answered 202), per second", "accept"), row(`done (all ${RUNS} finished), per second`, "done")];
}


/**
 * A POST with a Content-Length and, unlike fetch, any Host header, over kept-alive connections
 * as an API client would. workerd may close an idle connection just as it is reused; such a
 * request never reached the Worker and is sent once more.
 */
async function httpPost(url: URL, headers: Record<string, string>, body: Uint8Array, retried = false): Promise<{ status: number; body: string; timing?: string }> {
  try {
    return await new Promise((resolve, reject) => {
      const req = http.request(url, { method: "POST", agent: agentPool, headers: { ...headers, "content-length": String(body.byteLength) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), timing: res.headers["server-timing"] as string | undefined }));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end(body);
    });
  } catch (err) {
    if (!retried && (err as NodeJS.ErrnoException).code === "ECONNRESET") return httpPost(url, headers, body, true);
    throw err;
  }
}
