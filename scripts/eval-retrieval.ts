// `npm run eval:retrieval`: retrieval quality on the golden set in eval/retrieval (documents.md: one
// document per "## name" section; questions.json: each question with the documents that answer it).
// Runs the platform locally (the local embedding model and vector index), ingests the documents into
// one knowledge base through the API and the ingest queue, asks every question in keyword, vector and
// hybrid mode, and reports recall@5 and MRR@10 by document. Exits non-zero when hybrid is worse than
// either mode alone on either measure.
import { readFileSync } from "node:fs";
import { preparePlatform, startPlatform } from "./local-platform.ts";

const documents = [...readFileSync("eval/retrieval/documents.md", "utf8").matchAll(/^## (\S+)\n([\s\S]*?)(?=\n## |\s*$)/gm)].map((m) => ({ name: m[1]!, text: m[2]!.trim() }));
const questions = JSON.parse(readFileSync("eval/retrieval/questions.json", "utf8")) as { q: string; relevant: string[] }[];
for (const q of questions) for (const name of q.relevant) if (!documents.some((d) => d.name === name)) throw new Error(`question "${q.q}" names unknown document ${name}`);
console.log(`golden set: ${documents.length} documents, ${questions.length} questions`);

const { mf, adminToken } = await startPlatform(".eval/dist");
const { api, token } = await preparePlatform(mf, adminToken, "eval");
const host = "http://eval.localhost";
const project = await api(`${host}/v1/projects`, { method: "POST", token, body: JSON.stringify({ name: "Retrieval eval" }) });
const base = await api(`${host}/v1/knowledge-bases`, { method: "POST", token, body: JSON.stringify({ project_id: project.id, name: "Golden set" }) });
const baseUrl = `${host}/v1/knowledge-bases/${base.id as string}`;
for (const d of documents) {
  const res = await mf.dispatchFetch(`${baseUrl}/documents?name=${encodeURIComponent(d.name)}`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "text/markdown", "content-length": String(new TextEncoder().encode(d.text).byteLength) }, body: d.text } as never);
  if (res.status !== 202) throw new Error(`upload ${d.name}: ${res.status} ${await res.text()}`);
}
for (let waited = 0; ; waited += 100) {
  const pending = (await api(`${baseUrl}/documents?status=processing&limit=1`, { token })).data as unknown[];
  if (!pending.length) break;
  if (waited > 120_000) throw new Error("ingestion did not finish");
  await new Promise((r) => setTimeout(r, 100));
}
const failed = (await api(`${baseUrl}/documents?status=failed`, { token })).data as unknown[];
if (failed.length) throw new Error(`${failed.length} documents failed to ingest`);

type Mode = "keyword" | "vector" | "hybrid";
const modes: Mode[] = ["keyword", "vector", "hybrid"];
const scores = Object.fromEntries(modes.map((m) => [m, { recall: 0, mrr: 0 }])) as Record<Mode, { recall: number; mrr: number }>;
const misses: string[] = [];
for (const question of questions) {
  for (const mode of modes) {
    const found = await api(`${baseUrl}/search`, { method: "POST", token, body: JSON.stringify({ query: question.q, mode, top_k: 20 }) });
    // Ranked by document: a document's rank is that of its best chunk.
    const ranked = [...new Set((found.data as { document: { name: string } }[]).map((r) => r.document.name))].slice(0, 10);
    const top5 = ranked.slice(0, 5);
    scores[mode].recall += question.relevant.filter((n) => top5.includes(n)).length / question.relevant.length;
    const first = ranked.findIndex((n) => question.relevant.includes(n));
    scores[mode].mrr += first === -1 ? 0 : 1 / (first + 1);
    if (mode === "hybrid" && first !== 0) misses.push(`  ${question.q} → ${ranked.slice(0, 3).join(", ") || "(nothing)"} (wanted ${question.relevant.join(", ")})`);
  }
}
await mf.dispose();
const n = questions.length;
console.log("\n| mode | recall@5 | MRR@10 |\n|---|---:|---:|");
for (const mode of modes) console.log(`| ${mode} | ${(scores[mode].recall / n).toFixed(3)} | ${(scores[mode].mrr / n).toFixed(3)} |`);
if (misses.length) console.log(`\nHybrid did not rank a wanted document first for ${misses.length} questions:\n${misses.join("\n")}`);
const worse = (["keyword", "vector"] as const).flatMap((m) =>
  (["recall", "mrr"] as const).filter((k) => scores.hybrid[k] + 1e-9 < scores[m][k]).map((k) => `hybrid ${k} ${(scores.hybrid[k] / n).toFixed(3)} < ${m} ${(scores[m][k] / n).toFixed(3)}`),
);
if (worse.length) {
  console.error(`\nHybrid is worse than a mode alone: ${worse.join("; ")}`);
  process.exit(1);
}
console.log("\nHybrid is at least as good as keyword and vector alone on both measures.");
