// The floor of a vector search, for `npm run bench`: a bare Worker and one Durable Object holding
// vectors as float32 blobs in its SQLite, answering one exact (brute-force) cosine query over all of
// them. The embeddings are the local provider's, so it holds the same vectors as the knowledge base.
import { DurableObject } from "cloudflare:workers";
import { LocalAiProvider } from "../../src/providers/ai/local";

const embedder = new LocalAiProvider(0);

export class VectorFloor extends DurableObject<object> {
  private readonly sql = this.ctx.storage.sql;

  constructor(ctx: DurableObjectState, env: object) {
    super(ctx, env);
    this.sql.exec("CREATE TABLE IF NOT EXISTS v (id TEXT PRIMARY KEY, vec BLOB NOT NULL)");
  }

  async load(items: { id: string; text: string }[]): Promise<number> {
    const vectors = await embedder.embed(items.map((i) => i.text));
    for (const [n, item] of items.entries()) this.sql.exec("INSERT OR REPLACE INTO v (id, vec) VALUES (?, ?)", item.id, new Float32Array(vectors[n]!).buffer);
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM v").one().n;
  }

  async query(text: string, topK: number): Promise<{ id: string; score: number }[]> {
    const [q] = (await embedder.embed([text])) as [number[]];
    const scored: { id: string; score: number }[] = [];
    for (const row of this.sql.exec<{ id: string; vec: ArrayBuffer }>("SELECT id, vec FROM v")) {
      const v = new Float32Array(row.vec);
      let dot = 0;
      let norm = 0;
      for (let i = 0; i < v.length; i++) {
        dot += v[i]! * q[i]!;
        norm += v[i]! * v[i]!;
      }
      scored.push({ id: row.id, score: dot / (Math.sqrt(norm) || 1) });
    }
    return scored.sort((a, b) => b.score - a.score).slice(0, topK);
  }
}

export default {
  async fetch(req: Request, env: { FLOOR: DurableObjectNamespace<VectorFloor> }): Promise<Response> {
    const floor = env.FLOOR.get(env.FLOOR.idFromName("floor"));
    const body = (await req.json()) as { items?: { id: string; text: string }[]; query?: string; top_k?: number };
    if (new URL(req.url).pathname === "/load") return Response.json({ count: await floor.load(body.items ?? []) });
    return Response.json({ data: await floor.query(body.query ?? "", body.top_k ?? 10) });
  },
};
