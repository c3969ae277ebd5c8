// `npm run bench:profile`: where the authenticated read path spends its CPU. Runs the bundled
// Worker in one workerd with the inspector open, loads GET /v1/projects/{id} (access token) with
// autocannon while the V8 sampling profiler runs, and prints self time by function and by module.
// PROFILE=ws profiles a conversation socket's message round trips instead; PROFILE=runs, POST /v1/runs.
import { join } from "node:path";
import autocannon from "autocannon";
import { Miniflare } from "miniflare";
import { appWorkerOptions, bundleWorker, preparePlatform } from "../scripts/local-platform.ts";

const SECONDS = Number(process.env.PROFILE_SECONDS ?? "6");
const TENANT_HOST = "bench.localhost";
const INSPECTOR_PORT = 9339;

const outdir = ".bench/dist";
await bundleWorker(outdir);
const { options, bindings, adminToken } = await appWorkerOptions();
const mf = new Miniflare({
  inspectorPort: INSPECTOR_PORT,
  workers: [{ ...(options as object), name: "tessera", modules: true, scriptPath: join(outdir, "index.js"), bindings, unsafeDirectSockets: [{ port: 0 }] }],
  handleRuntimeStdio: (stdout: NodeJS.ReadableStream, stderr: NodeJS.ReadableStream) => {
    stdout.resume();
    stderr.resume();
  },
});
await mf.ready;
const { api, token } = await preparePlatform(mf, adminToken, "bench");
const project = await api(`http://${TENANT_HOST}/v1/projects`, { method: "POST", token, body: JSON.stringify({ name: "Profiled" }) });
const url = new URL(`/v1/projects/${project.id as string}`, await mf.unsafeGetDirectURL("tessera")).href;
const headers = { host: TENANT_HOST, authorization: `Bearer ${token}` };

const targets = (await (await fetch(`http://127.0.0.1:${INSPECTOR_PORT}/json`)).json()) as { id: string; title: string; webSocketDebuggerUrl?: string }[];
const target = targets.find((t) => t.title.includes("tessera")) ?? targets[0]!;
const ws = new globalThis.WebSocket(target.webSocketDebuggerUrl ?? `ws://127.0.0.1:${INSPECTOR_PORT}/${target.id}`);
await new Promise((r) => ws.addEventListener("open", r, { once: true }));
let next = 1;
const pending = new Map<number, (v: unknown) => void>();
ws.addEventListener("message", (e) => {
  const msg = JSON.parse(String(e.data)) as { id?: number; result?: unknown };
  if (msg.id && pending.has(msg.id)) pending.get(msg.id)!(msg.result);
});
const send = (method: string, params: object = {}) =>
  new Promise<unknown>((resolve) => {
    const id = next++;
    pending.set(id, resolve);
    ws.send(JSON.stringify({ id, method, params }));
  });

/** PROFILE=ws: one socket's message round trips on a conversation instead of the HTTP read. */
async function socketRoundTrips(seconds: number): Promise<number> {
  const conversation = await api(`http://${TENANT_HOST}/v1/conversations`, { method: "POST", token, body: JSON.stringify({ project_id: project.id }) });
  const res = await mf.dispatchFetch(`http://${TENANT_HOST}/v1/conversations/${conversation.id as string}/connect`, { headers: { upgrade: "websocket", authorization: `Bearer ${token}` } });
  const socket = res.webSocket!;
  socket.accept();
  let waiting: ((data: string) => void) | undefined;
  socket.addEventListener("message", (e) => waiting?.(String(e.data)));
  const deadline = Date.now() + seconds * 1000;
  let n = 0;
  while (Date.now() < deadline) {
    const echoed = new Promise<string>((resolve) => (waiting = (d) => d.includes(`"content":"frame ${n}"`) && resolve(d)));
    socket.send(JSON.stringify({ type: "message", content: `frame ${n}` }));
    await echoed;
    n++;
  }
  socket.close();
  return n;
}

const ws_ = process.env.PROFILE === "ws";
// PROFILE=runs: POST /v1/runs (queued, not consumed: the profile is of accepting a run).
let load_: Parameters<typeof autocannon>[0] = { url, headers, connections: 16, duration: SECONDS };
if (process.env.PROFILE === "runs") {
  const agent = await api(`http://${TENANT_HOST}/v1/agents`, { method: "POST", token, body: JSON.stringify({ project_id: project.id, name: "Profiled" }) });
  const runsUrl = new URL("/v1/runs", url).href;
  load_ = { url: runsUrl, method: "POST", headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify({ agent_id: agent.id, project_id: project.id, input: { text: "profiled run" } }), connections: 8, duration: SECONDS };
}
if (!ws_) await autocannon({ ...load_, duration: 2 });
await send("Profiler.enable");
await send("Profiler.setSamplingInterval", { interval: 100 });
await send("Profiler.start");
const load = ws_ ? { requests: { total: await socketRoundTrips(SECONDS), average: 0 } } : await autocannon(load_);
const { profile } = (await send("Profiler.stop")) as {
  profile: { nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[]; samples: number[]; timeDeltas: number[] };
};
ws.close();
await mf.dispose();

const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
for (const [i, id] of profile.samples.entries()) self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
const total = [...self.values()].reduce((a, b) => a + b, 0);
const byFunction = new Map<string, number>();
const byModule = new Map<string, number>();
for (const [id, us] of self) {
  const f = byNode.get(id)!.callFrame;
  const name = `${f.functionName || "(anonymous)"} ${f.url.split("/").slice(-2).join("/")}:${f.lineNumber}`;
  byFunction.set(name, (byFunction.get(name) ?? 0) + us);
  const mod = f.url ? f.url.split("/").slice(-1)[0]! : f.functionName;
  byModule.set(mod, (byModule.get(mod) ?? 0) + us);
}
const top = (m: Map<string, number>, n: number) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, us]) => `${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`)
    .join("\n");
const requests = load.requests.total;
console.log(`${requests} requests in ${SECONDS} s (${load.requests.average.toFixed(0)} req/s); isolate CPU sampled ${(total / 1000).toFixed(0)} ms, ${(total / requests).toFixed(0)} µs a request`);
console.log(`\nby function (self time)\n${top(byFunction, 30)}`);
console.log(`\nby module\n${top(byModule, 12)}`);
