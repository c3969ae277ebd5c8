// The knowledge section of `npm run bench`: ingestion throughput, how soon an upload is searchable,
// and hybrid search latency over 10,000 chunks against a bare Worker's brute-force cosine query over
// the same vectors in a Durable Object's SQLite (measured alternately, one query at a time).
import type { Miniflare } from "miniflare";

type Post = (url: URL, headers: Record<string, string>, body: Uint8Array) => Promise<{ status: number; body: string; timing?: string }>;

export interface KnowledgeBench {
  mf: Miniflare;
  appUrl: URL;
  floorUrl: URL;
  host: string;
  token: string;
  projectId: string;
  tenantBinding: string;
  post: Post;
  rounds: number;
}

/** A deterministic vocabulary and text generator: every run ingests the same documents. */
function generator(seed: number) {
  let s = seed;
  const rand = () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const syllables = ["ka", "lo", "mi", "ra", "te", "su", "vo", "ne", "pa", "di", "go", "ru", "sa", "ti", "be", "ho"];
  const vocabulary = Array.from({ length: 3000 }, () => Array.from({ length: 2 + Math.floor(rand() * 3) }, () => syllables[Math.floor(rand() * syllables.length)]).join(""));
  // Zipf-like: a few words are common, most are rare, as in real text.
  const word = () => vocabulary[Math.floor(vocabulary.length * rand() ** 2.5)]!;
  const sentence = () => `${Array.from({ length: 8 + Math.floor(rand() * 10) }, word).join(" ")}.`;
  const paragraph = (chars: number) => {
    let p = "";
    while (p.length < chars) p += `${sentence()} `;
    return p.trim();
  };
  return { word, paragraph, rand };
}

const percentile = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};

export async function measureKnowledge(b: KnowledgeBench): Promise<{ ingest: string[]; searchable: string[]; search: string[] }> {
  const headers = { host: b.host, authorization: `Bearer ${b.token}`, "content-type": "application/json" };
  const json = async (path: string, body: unknown, method = "POST") => {
    const res = await b.mf.dispatchFetch(new URL(path, `http://${b.host}`).href, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) } as never);
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  };
  const upload = async (baseId: string, name: string, text: string) => {
    const res = await b.post(new URL(`/v1/knowledge-bases/${baseId}/documents?name=${encodeURIComponent(name)}`, b.appUrl), { host: b.host, authorization: `Bearer ${b.token}`, "content-type": "text/markdown" }, new TextEncoder().encode(text));
    if (res.status !== 202) throw new Error(`upload ${name}: ${res.status} ${res.body}`);
    return JSON.parse(res.body) as { id: string };
  };
  const processing = async (baseId: string) => ((await json(`/v1/knowledge-bases/${baseId}/documents?status=processing&limit=1`, undefined, "GET")).data as unknown[]).length;
  const failed = async (baseId: string) => ((await json(`/v1/knowledge-bases/${baseId}/documents?status=failed&limit=1`, undefined, "GET")).data as unknown[]).length;
  const newBase = async (name: string) => (await json("/v1/knowledge-bases", { project_id: b.projectId, name, chunking: { max_tokens: 100, overlap_tokens: 0 } })).id as string;
  const waitReady = async (baseId: string) => {
    const deadline = Date.now() + 600_000;
    while ((await processing(baseId)) > 0) {
      if (Date.now() > deadline) throw new Error("ingestion timed out");
      await new Promise((r) => setTimeout(r, 25));
    }
    if (await failed(baseId)) throw new Error("a benchmark document failed to ingest");
  };
  const gen = generator(42);

  // 1. Ingestion: 20 documents of 50 chunks each (1,000 chunks), uploaded at once, until all are ready.
  const ingest: { seconds: number; chunks: number }[] = [];
  for (let round = 1; round <= b.rounds; round++) {
    const baseId = await newBase(`ingest ${round}`);
    const docs = Array.from({ length: 20 }, (_, d) => `${Array.from({ length: 50 }, () => gen.paragraph(280)).join("\n\n")}\n\n${d}`);
    const started = performance.now();
    await Promise.all(docs.map((text, d) => upload(baseId, `doc-${d}.md`, text)));
    await waitReady(baseId);
    const seconds = (performance.now() - started) / 1000;
    const db = await b.mf.getD1Database(b.tenantBinding, "tessera");
    const chunks = (await db.prepare("SELECT count(*) AS n FROM knowledge_chunks WHERE knowledge_base_id = ?").bind(baseId).first<{ n: number }>())!.n;
    ingest.push({ seconds, chunks });
    console.log(`round ${round}  ingest: 20 documents, ${chunks} chunks ready in ${seconds.toFixed(2)} s`);
    await json(`/v1/knowledge-bases/${baseId}`, undefined, "DELETE");
  }

  // 2. Upload to searchable: a small document, then hybrid searches until it is found.
  const small = await newBase("fresh");
  const latencies: number[] = [];
  for (let i = 0; i < 20 * b.rounds; i++) {
    const marker = `zq${i}marker${Math.floor(gen.rand() * 1e9)}`;
    const started = performance.now();
    await upload(small, `fresh-${i}.md`, `${gen.paragraph(200)} ${marker}`);
    for (;;) {
      const found = (await json(`/v1/knowledge-bases/${small}/search`, { query: marker, top_k: 1 })).data as unknown[];
      if (found.length) break;
      if (performance.now() - started > 60_000) throw new Error("an upload never became searchable");
      await new Promise((r) => setTimeout(r, 20));
    }
    latencies.push(performance.now() - started);
  }
  await json(`/v1/knowledge-bases/${small}`, undefined, "DELETE");
  console.log(`upload → searchable: p50 ${percentile(latencies, 50).toFixed(0)} ms, p95 ${percentile(latencies, 95).toFixed(0)} ms`);

  // 3. Search: 10,000 chunks (100 documents of 100), hybrid top 10, against the floor over the same vectors.
  const big = await newBase("search");
  const bigDocs = Array.from({ length: 100 }, () => Array.from({ length: 100 }, () => gen.paragraph(280)).join("\n\n"));
  for (let i = 0; i < bigDocs.length; i += 10) await Promise.all(bigDocs.slice(i, i + 10).map((text, d) => upload(big, `big-${i + d}.md`, text)));
  await waitReady(big);
  const db = await b.mf.getD1Database(b.tenantBinding, "tessera");
  const rows = (await db.prepare("SELECT id, text FROM knowledge_chunks WHERE knowledge_base_id = ?").bind(big).all<{ id: string; text: string }>()).results;
  let floorCount = 0;
  for (let i = 0; i < rows.length; i += 500) {
    const res = await b.post(b.floorUrl.href.endsWith("/") ? new URL("load", b.floorUrl) : new URL("/load", b.floorUrl), { "content-type": "application/json" }, new TextEncoder().encode(JSON.stringify({ items: rows.slice(i, i + 500) })));
    floorCount = (JSON.parse(res.body) as { count: number }).count;
  }
  console.log(`search corpus: ${rows.length} chunks in the base, ${floorCount} vectors in the floor`);
  const queries = Array.from({ length: 60 }, () => Array.from({ length: 4 }, gen.word).join(" "));
  const timed = { tessera: [] as number[], floor: [] as number[] };
  // Where a search's time goes, from its Server-Timing header.
  const steps = new Map<string, number[]>();
  // Warm both, then alternate query by query.
  for (const q of queries.slice(0, 5)) {
    await json(`/v1/knowledge-bases/${big}/search`, { query: q, top_k: 10 });
    await b.post(new URL("/query", b.floorUrl), { "content-type": "application/json" }, new TextEncoder().encode(JSON.stringify({ query: q, top_k: 10 })));
  }
  for (let round = 1; round <= b.rounds; round++) {
    for (const q of queries) {
      let started = performance.now();
      const res = await b.post(new URL(`/v1/knowledge-bases/${big}/search`, b.appUrl), headers, new TextEncoder().encode(JSON.stringify({ query: q, top_k: 10, mode: "hybrid" })));
      if (res.status !== 200) throw new Error(`search: ${res.status} ${res.body}`);
      if (res.timing) for (const part of res.timing.split(", ")) {
        const [name, dur] = part.split(";dur=");
        steps.set(name!, [...(steps.get(name!) ?? []), Number(dur)]);
      }
      timed.tessera.push(performance.now() - started);
      started = performance.now();
      await b.post(new URL("/query", b.floorUrl), { "content-type": "application/json" }, new TextEncoder().encode(JSON.stringify({ query: q, top_k: 10 })));
      timed.floor.push(performance.now() - started);
    }
    console.log(`round ${round}  search p95: Tessera hybrid ${percentile(timed.tessera, 95).toFixed(1)} ms, bare cosine ${percentile(timed.floor, 95).toFixed(1)} ms`);
    console.log(`  steps (p50 ms): ${[...steps].map(([name, xs]) => `${name} ${percentile(xs, 50)}`).join(", ")}`);
  }
  const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
  const docsPerSecond = 20 / mean(ingest.map((r) => r.seconds));
  const chunksPerSecond = mean(ingest.map((r) => r.chunks / r.seconds));
  return {
    ingest: [`| 20 documents, ${ingest[0]!.chunks} chunks (upload → all ready) | ${docsPerSecond.toFixed(1)} documents/s | ${chunksPerSecond.toFixed(0)} chunks/s |`],
    searchable: [`| small document, upload → found by search (${latencies.length} uploads) | ${percentile(latencies, 50).toFixed(0)} ms | ${percentile(latencies, 95).toFixed(0)} ms |`],
    search: [
      `| search, top 10, ${rows.length} chunks (${timed.tessera.length} queries) | ${percentile(timed.tessera, 50).toFixed(1)} | ${percentile(timed.tessera, 95).toFixed(1)} | ${percentile(timed.floor, 50).toFixed(1)} | ${percentile(timed.floor, 95).toFixed(1)} | ${(percentile(timed.tessera, 95) / percentile(timed.floor, 95)).toFixed(2)} |`,
    ],
  };
}
