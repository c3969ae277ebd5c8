// `npm run bench:shards`: the cost of the router hop. A router (shard s1, which also serves its own
// tenants) and a second shard's Worker in one local workerd, bound by a service binding as in the
// test pool; a tenant on each; the same requests to both, interleaved so both see the same noise.
// A request to the s2 tenant is resolved by the router, forwarded, and resolved again by s2.
import { Miniflare } from "miniflare";
import { apiClient, appWorkerOptions, bundleWorker, migrate, shardBinding, shardWorkerOptions } from "../scripts/local-platform.ts";

const REQUESTS = Number(process.env.REQUESTS ?? 400);
const OUT = ".bench/shards-dist";
const PLATFORM = "http://localhost";

console.log("bundling the Worker…");
await bundleWorker(OUT);
const { options, bindings, adminToken } = await appWorkerOptions();
const mf = new Miniflare({
  workers: [
    { ...(options as object), name: "tessera", modules: true, scriptPath: `${OUT}/index.js`, bindings, serviceBindings: { [shardBinding("s2")]: "tessera-s2" } },
    shardWorkerOptions("s2", { first: 5001, databases: 8, controlDatabaseId: options.d1Databases!.CONTROL_DB!, bindings, scriptPath: `${OUT}/index.js` }),
  ],
  handleRuntimeStdio: (stdout: NodeJS.ReadableStream, stderr: NodeJS.ReadableStream) => {
    stdout.resume();
    stderr.resume();
  },
});
await mf.ready;
await migrate(mf, "CONTROL_DB", "migrations/control");
const api = apiClient(mf);
const admin = (path: string, init: RequestInit = {}) => api(`${PLATFORM}${path}`, { ...init, token: adminToken });

/** A tenant signed up now (placed where the router puts it), on the unlimited plan, with one project. */
async function tenant(slug: string) {
  const made = await api(`${PLATFORM}/v1/signup`, { method: "POST", body: JSON.stringify({ tenant: { name: slug, slug }, user: { email: `${slug}@example.test`, password: `${slug} password 1`, name: slug } }) });
  const id = (made.tenant as { id: string }).id;
  await admin(`/v1/platform/tenants/${id}/plan`, { method: "POST", body: JSON.stringify({ plan: "unlimited" }) });
  const host = `http://${slug}.localhost`;
  const token = made.access_token as string;
  await api(`${host}/v1/projects`, { method: "POST", token, body: JSON.stringify({ name: "Bench" }) });
  const listed = (await admin("/v1/platform/tenants")) as { data: { id: string; shard: string }[] };
  return { host, token, shard: listed.data.find((t) => t.id === id)!.shard };
}

// Shard s1's pool alone first, so the first tenant lands there; then s2's, larger, takes the second.
await admin("/v1/platform/databases/sync", { method: "POST" });
await (await mf.getD1Database("CONTROL_DB", "tessera"))
  .prepare("INSERT INTO plans (id, name, requests_per_minute, member_requests_per_minute, monthly_tokens, seats, projects, storage_bytes) VALUES ('unlimited', 'Unlimited', 100000000, 100000000, 1000000000000, 1000, 1000, 10000000000000)")
  .run();
const first = await tenant("bench-s1");
await admin("/v1/platform/databases/sync?shard=s2", { method: "POST" });
const second = await tenant("bench-s2");
if (first.shard !== "s1" || second.shard !== "s2") throw new Error(`tenants placed on ${first.shard} and ${second.shard}`);

const requests = {
  "GET /v1/projects": (t: typeof first) => api(`${t.host}/v1/projects`, { token: t.token }),
  "POST /v1/projects": (t: typeof first) => api(`${t.host}/v1/projects`, { method: "POST", token: t.token, body: JSON.stringify({ name: "Another" }) }),
};

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;
const rows: string[] = [];
for (const [name, request] of Object.entries(requests)) {
  const times: Record<"s1" | "s2", number[]> = { s1: [], s2: [] };
  // Warm both paths (isolates, caches), then alternate which shard goes first.
  for (let i = 0; i < 20; i++) await Promise.all([request(first), request(second)]);
  for (let i = 0; i < REQUESTS; i++) {
    for (const t of i % 2 ? [first, second] : [second, first]) {
      const started = performance.now();
      await request(t);
      times[t.shard as "s1" | "s2"].push(performance.now() - started);
    }
  }
  const [m1, m2, p1, p2] = [quantile(times.s1, 0.5), quantile(times.s2, 0.5), quantile(times.s1, 0.95), quantile(times.s2, 0.95)];
  rows.push(`| ${name} | ${m1.toFixed(2)} ms | ${m2.toFixed(2)} ms | **${(m2 / m1).toFixed(2)}×** | ${p1.toFixed(2)} ms | ${p2.toFixed(2)} ms | ${(p2 / p1).toFixed(2)}× |`);
}
await mf.dispose();

console.log(`\n${REQUESTS} of each request per shard, interleaved (router = shard s1; s2 behind a service binding):\n`);
console.log("| request | s1 median | s2 median (router hop) | s2 / s1 | s1 p95 | s2 p95 | p95 s2 / s1 |");
console.log("|---|---|---|---|---|---|---|");
for (const r of rows) console.log(r);
