// The publishing section of `npm run bench`: 1,000 posts due in the same minute, from their due
// time to `published` through the real scheduler alarm, queue and sandbox publisher; and approving
// a post (p50/p95). Floors: a bare Worker whose Durable Object alarm at the same due time queues
// 1,000 messages to a consumer that writes one D1 row each; and the bare D1 point read per request.
import type { Miniflare } from "miniflare";

type Call = (method: string, path: string, body?: unknown, token?: string) => Promise<{ status: number; body: string }>;

/** The bare floor: `POST /?at=ms&n=N` arms a DO alarm; at it the DO queues N messages; the consumer writes a row per message with its time. */
export const PUBLISH_FLOOR_SCRIPT = `
  export class Clock {
    constructor(state, env) { this.state = state; this.env = env; }
    async fetch(req) {
      const url = new URL(req.url);
      await this.state.storage.put("n", Number(url.searchParams.get("n")));
      await this.state.storage.setAlarm(Number(url.searchParams.get("at")));
      return new Response(null, { status: 202 });
    }
    async alarm() {
      const n = await this.state.storage.get("n");
      const ids = Array.from({ length: n }, (_, i) => i);
      for (let i = 0; i < n; i += 100) await this.env.Q.sendBatch(ids.slice(i, i + 100).map((id) => ({ body: { id } })));
    }
  }
  export default {
    async fetch(req, env) {
      const url = new URL(req.url);
      if (url.pathname === "/done") return Response.json(await env.DB.prepare("SELECT count(*) AS n, max(at) AS last FROM done").first());
      await env.DB.prepare("CREATE TABLE IF NOT EXISTS done (id INTEGER PRIMARY KEY, at INTEGER NOT NULL)").run();
      await env.DB.prepare("DELETE FROM done").run();
      return env.CLOCK.get(env.CLOCK.idFromName("one")).fetch(req);
    },
    async queue(batch, env) {
      for (const m of batch.messages) {
        await env.DB.prepare("INSERT OR IGNORE INTO done (id, at) VALUES (?, ?)").bind(m.body.id, Date.now()).run();
        m.ack();
      }
    },
  };`;

export interface PublishingBench {
  mf: Miniflare;
  call: Call;
  /** A client member's access token, limited to the project. */
  clientToken: string;
  floorUrl: URL;
  projectId: string;
  tenantBinding: string;
  /** GET the bare D1 point read once (the approve floor). */
  floorRead: () => Promise<void>;
}

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;

async function inParallel<T>(items: T[], clients: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

export async function measurePublishing(b: PublishingBench): Promise<string[]> {
  const N = 1000;
  const ok = async (res: Promise<{ status: number; body: string }>, what: string) => {
    const r = await res;
    if (r.status >= 300) throw new Error(`${what}: ${r.status} ${r.body}`);
    return JSON.parse(r.body || "null") as Record<string, unknown>;
  };
  await ok(b.call("POST", `/v1/projects/${b.projectId}/channels`, { channel: "linkedin", name: "Bench", credentials: {} }), "connect");

  // Approve: posts under a required policy, submitted, each approved by one request.
  await ok(b.call("PUT", `/v1/projects/${b.projectId}/approval-policy`, { mode: "required" }), "policy");
  const approveLatencies: number[] = [];
  const clientLatencies: number[] = [];
  const floorLatencies: number[] = [];
  const reviewIds: string[] = [];
  for (let i = 0; i < 400; i++) {
    const post = await ok(b.call("POST", "/v1/posts", { project_id: b.projectId, title: `Review ${i}`, variants: [{ channel: "linkedin", text: `Review me ${i}` }] }), "post");
    await ok(b.call("POST", `/v1/posts/${post.id as string}/submit`), "submit");
    reviewIds.push(post.id as string);
  }
  for (const [i, id] of reviewIds.entries()) {
    // Interleaved: an owner's key and a limited client approve in turn, each beside a bare read.
    const byClient = i % 2 === 1;
    let started = performance.now();
    await ok(b.call("POST", `/v1/posts/${id}/approve`, { revision: 1 }, byClient ? b.clientToken : undefined), "approve");
    (byClient ? clientLatencies : approveLatencies).push(performance.now() - started);
    if (byClient) continue;
    started = performance.now();
    await b.floorRead();
    floorLatencies.push(performance.now() - started);
  }

  // Publishing: N posts approved (policy none from here), then all scheduled for the same instant.
  await ok(b.call("PUT", `/v1/projects/${b.projectId}/approval-policy`, { mode: "none" }), "policy");
  const ids: string[] = [];
  await inParallel(Array.from({ length: N }, (_, i) => i), 16, async (i) => {
    const post = await ok(b.call("POST", "/v1/posts", { project_id: b.projectId, title: `Due ${i}`, variants: [{ channel: "linkedin", text: `Due together ${i}` }] }), "post");
    await ok(b.call("POST", `/v1/posts/${post.id as string}/submit`), "submit");
    ids.push(post.id as string);
  });
  const due = Date.now() + 20_000;
  const dueIso = new Date(due).toISOString();
  await inParallel(ids, 16, async (id) => void (await ok(b.call("POST", `/v1/posts/${id}/schedule`, { at: dueIso }), "schedule")));
  if (Date.now() >= due) throw new Error("scheduling took longer than the lead time; raise it");
  // The floor's alarm is set for the same instant, so both run in the same minute, side by side.
  const armed = await fetch(new URL(`/?at=${due}&n=${N}`, b.floorUrl), { method: "POST" });
  if (armed.status !== 202) throw new Error(`floor: ${armed.status} ${await armed.text()}`);

  const db = await b.mf.getD1Database(b.tenantBinding, "tessera");
  const deadline = due + 180_000;
  let published = { n: 0, last: null as string | null };
  for (;;) {
    published = (await db.prepare("SELECT count(*) AS n, max(published_at) AS last FROM posts WHERE status = 'published' AND title LIKE 'Due %'").first<{ n: number; last: string | null }>())!;
    if (published.n >= N || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  let floor = { n: 0, last: null as number | null };
  for (;;) {
    floor = (await (await fetch(new URL("/done", b.floorUrl))).json()) as { n: number; last: number | null };
    if (floor.n >= N || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const twice = (await db.prepare("SELECT count(*) AS n FROM (SELECT post_id, channel FROM post_publications GROUP BY post_id, channel HAVING count(*) > 1)").first<{ n: number }>())!.n;
  const failed = (await db.prepare("SELECT count(*) AS n FROM posts WHERE status IN ('failed', 'publishing', 'scheduled') AND title LIKE 'Due %'").first<{ n: number }>())!.n;
  const tessera = published.last ? Date.parse(published.last) - due : Number.NaN;
  const bare = floor.last ? floor.last - due : Number.NaN;
  console.log(`publishing: ${published.n}/${N} published ${tessera} ms after due (bare ${floor.n} in ${bare} ms); published twice: ${twice}; not published: ${failed}`);
  console.log(`approve p50 ${percentile(approveLatencies, 50).toFixed(1)} ms, p95 ${percentile(approveLatencies, 95).toFixed(1)} ms; bare D1 read p50 ${percentile(floorLatencies, 50).toFixed(1)} ms`);
  return [
    `| ${N} posts due in the same minute: due time → last one \`published\` | ${published.n}/${N} in ${(tessera / 1000).toFixed(1)} s (none twice: ${twice === 0 ? "yes" : `no, ${twice}`}) | ${floor.n}/${N} in ${(bare / 1000).toFixed(1)} s | ${(bare / tessera).toFixed(2)} | ≤ 60 s | ${published.n === N && tessera <= 60_000 && twice === 0 ? "yes" : "no"} |`,
    `| approve a post (200, one at a time), p50 / p95 | ${percentile(approveLatencies, 50).toFixed(1)} / ${percentile(approveLatencies, 95).toFixed(1)} ms | ${percentile(floorLatencies, 50).toFixed(1)} / ${percentile(floorLatencies, 95).toFixed(1)} ms (bare D1 point read) | ${(percentile(floorLatencies, 50) / percentile(approveLatencies, 50)).toFixed(2)} | — | — |`,
    `| approve as a \`client\` limited to the project (200, interleaved with the above), p50 / p95 | ${percentile(clientLatencies, 50).toFixed(1)} / ${percentile(clientLatencies, 95).toFixed(1)} ms | ${percentile(approveLatencies, 50).toFixed(1)} / ${percentile(approveLatencies, 95).toFixed(1)} ms (the same approve by a key reaching every project) | ${(percentile(approveLatencies, 50) / percentile(clientLatencies, 50)).toFixed(2)} | — | — |`,
  ];
}
