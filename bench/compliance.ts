// The compliance section of `npm run bench`: a whole-tenant export at two sizes (a tenth, then
// 10,000 messages, 1,000 runs and 100 MiB of artifacts), time and workerd's peak memory, beside a
// bare Worker streaming the same rows, messages and bytes into a ZIP (bench/floors/zip-floor.ts);
// then the erasure of that tenant, from the request to the signed receipt.
import type { Miniflare } from "miniflare";

type Api = (url: string, init?: RequestInit & { token?: string }) => Promise<Record<string, unknown>>;
type Post = (url: URL, headers: Record<string, string>, body: Uint8Array) => Promise<{ status: number; body: string }>;

export interface ComplianceBench {
  mf: Miniflare;
  api: Api;
  post: Post;
  adminToken: string;
  appUrl: URL;
  floorUrl: URL;
  withPeakMemory: (work: () => Promise<void>) => Promise<{ ms: number; peakMiB: number }>;
  rounds: number;
}

const SLUG = "archive";
const HOST = `${SLUG}.localhost`;
const CONVERSATIONS = 20;
const ARTIFACT_MIB = 5;
const CLIENTS = 16;
/** Each size: messages, runs, MiB of artifacts. */
const SIZES = [
  { messages: 1000, runs: 100, mib: 10 },
  { messages: 10_000, runs: 1000, mib: 100 },
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function inParallel(count: number, fn: (i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (next < count) await fn(next++);
  }));
}

export async function measureCompliance(o: ComplianceBench): Promise<string[]> {
  const signup = await o.api("http://localhost/v1/signup", {
    method: "POST",
    body: JSON.stringify({ tenant: { name: "Archive", slug: SLUG }, user: { email: "archive@example.test", password: "archive password 1", name: "Archivist" } }),
  });
  const tenantId = (signup.tenant as { id: string }).id;
  const token = signup.access_token as string;
  await o.api(`http://localhost/v1/platform/tenants/${tenantId}/plan`, { method: "POST", token: o.adminToken, body: JSON.stringify({ plan: "unlimited" }) });
  const binding = ((await o.api("http://localhost/v1/platform/tenants?limit=100", { token: o.adminToken })).data as { id: string; db_binding: string }[]).find((t) => t.id === tenantId)!.db_binding;
  const d1 = await o.mf.getD1Database(binding, "tessera");
  const api = (path: string, method = "GET", body?: unknown) => o.api(`http://${HOST}${path}`, { method, token, ...(body !== undefined && { body: JSON.stringify(body) }) });

  const project = await api("/v1/projects", "POST", { name: "Archive" });
  const agent = await api("/v1/agents", "POST", { project_id: project.id, name: "Writer", system_prompt: "You write." });
  const conversations = await Promise.all(Array.from({ length: CONVERSATIONS }, (_, i) => api("/v1/conversations", "POST", { project_id: project.id, title: `Thread ${i}` })));
  // One run through the queue, as a client makes it; the rest are copies of its row (the export reads rows, not how they came).
  const first = await api("/v1/runs", "POST", { agent_id: agent.id, project_id: project.id, input: { text: "Write about archives" } });
  while ((await api(`/v1/runs/${first.id as string}`)).status !== "SUCCEEDED") await sleep(100);
  const columns = (await d1.prepare("SELECT name FROM pragma_table_info('runs')").all<{ name: string }>()).results.map((c) => c.name);
  const copy = columns.map((c) => (c === "id" ? `'run_' || printf('%026d', ? + i)` : /idempotency/.test(c) ? "NULL" : `r."${c}"`)).join(", ");

  const have = { messages: 0, runs: 1, mib: 0 };
  const grow = async (to: (typeof SIZES)[number]) => {
    const messages = to.messages - have.messages;
    await inParallel(messages, async (i) => {
      const conversation = conversations[i % CONVERSATIONS]!;
      await api(`/v1/conversations/${conversation.id as string}/messages`, "POST", { content: `Message ${have.messages + i}: a line of about the length people write in a chat, with some detail in it.` });
    });
    have.messages = to.messages;
    const runs = to.runs - have.runs;
    await d1
      .prepare(`INSERT INTO runs (${columns.map((c) => `"${c}"`).join(", ")}) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) SELECT ${copy} FROM n, runs r WHERE r.id = ?`)
      .bind(runs, have.runs, first.id)
      .run();
    have.runs = to.runs;
    const body = new Uint8Array(ARTIFACT_MIB * 1024 * 1024).map((_, i) => (i * 7) % 251);
    for (let mib = have.mib; mib < to.mib; mib += ARTIFACT_MIB) {
      const res = await o.post(new URL(`/v1/artifacts?project_id=${project.id as string}&kind=video&name=clip-${mib}.mp4`, o.appUrl), { host: HOST, authorization: `Bearer ${token}`, "content-type": "video/mp4" }, body);
      if (res.status !== 201) throw new Error(`artifact upload: ${res.status} ${res.body}`);
    }
    have.mib = to.mib;
  };

  const exportOnce = async () => {
    const asked = await api("/v1/exports", "POST", { scope: "tenant" });
    for (;;) {
      const now = await api(`/v1/exports/${asked.id as string}`);
      if (now.status === "ready") return now;
      if (now.status === "failed") throw new Error(`export failed: ${now.error as string}`);
      await sleep(50);
    }
  };
  const floorOnce = async () => {
    const res = await fetch(`${o.floorUrl.href}?db=${binding}&tenant=${tenantId}`);
    const reader = res.body!.getReader();
    while (!(await reader.read()).done);
  };

  const rows: string[] = [];
  for (const size of SIZES) {
    await grow(size);
    const runs = { api: [] as { ms: number; peakMiB: number }[], floor: [] as { ms: number; peakMiB: number }[] };
    let bytes = 0;
    for (let round = 1; round <= o.rounds; round++) {
      const api = await o.withPeakMemory(async () => {
        bytes = (await exportOnce()).bytes as number;
      });
      const floor = await o.withPeakMemory(floorOnce);
      runs.api.push(api);
      runs.floor.push(floor);
      console.log(`round ${round}  export ${size.messages} messages, ${size.runs} runs, ${size.mib} MiB: ${api.ms.toFixed(0)} ms +${api.peakMiB.toFixed(0)} MiB; floor ${floor.ms.toFixed(0)} ms +${floor.peakMiB.toFixed(0)} MiB`);
    }
    // The best time of the rounds (a pause on the shared machine only ever adds), and the worst memory.
    const s = (kind: "api" | "floor") => Math.min(...runs[kind].map((r) => r.ms)) / 1000;
    const m = (kind: "api" | "floor") => Math.max(...runs[kind].map((r) => r.peakMiB));
    const label = `${size.messages.toLocaleString("en")} messages, ${size.runs.toLocaleString("en")} runs, ${size.mib} MiB (archive ${(bytes / 1024 / 1024).toFixed(0)} MiB)`;
    rows.push(`| export, ${label}: seconds | ${s("api").toFixed(1)} | ${s("floor").toFixed(1)} | ${(s("api") / s("floor")).toFixed(2)} |`);
    rows.push(`| export, ${label}: peak workerd memory above idle, MiB | ${m("api").toFixed(0)} | ${m("floor").toFixed(0)} | |`);
  }

  await o.api(`http://localhost/v1/platform/tenants/${tenantId}/suspend`, { method: "POST", token: o.adminToken });
  const started = performance.now();
  const erasure = await o.api(`http://localhost/v1/platform/tenants/${tenantId}/erase`, { method: "POST", token: o.adminToken });
  for (;;) {
    const now = await o.api(`http://localhost/v1/erasures/${erasure.id as string}`, { token: o.adminToken });
    if (now.status === "completed") break;
    if (now.status === "failed") throw new Error(`erasure failed: ${now.error as string}`);
    await sleep(100);
  }
  const erased = (performance.now() - started) / 1000;
  const left = (await d1.prepare("SELECT count(*) AS n FROM runs").first<{ n: number }>())!.n;
  if (left) throw new Error(`the erased tenant's database still holds ${left} runs`);
  console.log(`erasure: ${erased.toFixed(1)} s`);
  rows.push(`| erasure of that tenant, request to signed receipt (every store; waits out the 5 s tenant cache before the pool step): seconds | ${erased.toFixed(1)} | | target 3,600: ${erased < 3600 ? "met" : "missed"} |`);
  return rows;
}
