import type { IndexMatch, IndexedVector, MetadataFilter } from "../../../durable-objects/vector-index";
import { type Env, loadConfig } from "../../env";

export type { IndexMatch, IndexedVector, MetadataFilter, MetadataValue } from "../../../durable-objects/vector-index";

/**
 * Where embeddings are stored and searched. Every call names its namespace (the tenant): a query
 * can never reach another namespace's vectors. Writes are asynchronous, as in Vectorize: a
 * mutation is searchable once `processedUpTo` reports it (or a later one).
 */
export interface VectorStore {
  readonly name: "cloudflare" | "local";
  upsert(namespace: string, vectors: IndexedVector[]): Promise<{ mutationId: string }>;
  query(namespace: string, values: number[], opts: { topK: number; filter?: MetadataFilter }): Promise<IndexMatch[]>;
  deleteByIds(namespace: string, ids: string[]): Promise<{ mutationId: string }>;
  /** The last mutation the namespace's searches reflect (null before the first). */
  processedUpTo(namespace: string): Promise<string | null>;
}

/** Vectorize (V2, asynchronous mutations): one index, the tenant as the namespace. The binding is typed as the legacy `VectorizeIndex`. */
class CloudflareVectors implements VectorStore {
  readonly name = "cloudflare" as const;
  constructor(private readonly index: Vectorize) {}

  async upsert(namespace: string, vectors: IndexedVector[]) {
    return this.index.upsert(vectors.map((v) => ({ ...v, namespace })));
  }

  async query(namespace: string, values: number[], opts: { topK: number; filter?: MetadataFilter }) {
    const found = await this.index.query(values, { namespace, topK: opts.topK, filter: opts.filter, returnMetadata: "all" });
    return found.matches.map((m) => ({ id: m.id, score: m.score, metadata: m.metadata as IndexMatch["metadata"] }));
  }

  async deleteByIds(_namespace: string, ids: string[]) {
    return this.index.deleteByIds(ids);
  }

  async processedUpTo() {
    // Typed as a number in workers-types; Vectorize answers the mutation's UUID.
    const info = await this.index.describe();
    return (info.processedUpToMutation as unknown as string | null) ?? null;
  }
}

/** The local index: a LocalVectorIndex Durable Object per namespace, writes visible after LOCAL_VECTOR_DELAY_MS. */
class LocalVectors implements VectorStore {
  readonly name = "local" as const;
  constructor(
    private readonly ns: Env["VECTOR_INDEX"],
    private readonly delayMs: number,
  ) {}

  private index(namespace: string) {
    return this.ns.get(this.ns.idFromName(namespace));
  }

  async upsert(namespace: string, vectors: IndexedVector[]) {
    const answer = await this.index(namespace).upsert(vectors, this.delayMs);
    if ("refused" in answer) throw new Error(answer.refused);
    return answer;
  }

  async query(namespace: string, values: number[], opts: { topK: number; filter?: MetadataFilter }) {
    return (await this.index(namespace).query(values, { ...opts, returnMetadata: true })).matches;
  }

  deleteByIds(namespace: string, ids: string[]) {
    return this.index(namespace).deleteByIds(ids, this.delayMs);
  }

  async processedUpTo(namespace: string) {
    return (await this.index(namespace).describe()).processedUpToMutation;
  }
}

/** The store `VECTOR_PROVIDER` names; chosen by configuration only, and it says which it is. */
export function vectorStore(env: Env): VectorStore {
  const config = loadConfig(env);
  return config.VECTOR_PROVIDER === "cloudflare" ? new CloudflareVectors(env.VECTORIZE as unknown as Vectorize) : new LocalVectors(env.VECTOR_INDEX, config.LOCAL_VECTOR_DELAY_MS);
}
