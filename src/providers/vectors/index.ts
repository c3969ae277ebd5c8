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
  /** The last mutation the namespace's searches reflect, and when it was made (nulls before the first). */
  processedUpTo(namespace: string): Promise<IndexProgress>;
  /** Which of these ids searches can find now (their write applied). */
  visible(namespace: string, ids: string[]): Promise<Set<string>>;
  /**
   * Erases a namespace (the tenant is erased), a page of its ids at a time: Vectorize has no
   * namespace deletion, so these ids are deleted; the local index drops its whole object at once.
   */
  eraseNamespace(namespace: string, ids: string[]): Promise<void>;
}

/** How far an index has applied its writes. */
export interface IndexProgress {
  mutationId: string | null;
  /** Milliseconds since the epoch of the last applied mutation. */
  at: number | null;
}

/** Clocks may disagree by this much between the Worker that recorded a write and the index. */
const CLOCK_SKEW_MS = 2000;

/**
 * Whether the index has applied a write (`id`, answered at `at`): it names that write as its last,
 * or its last applied write was made clearly after this one (writes are applied in order). A
 * Vectorize index is shared by every tenant, so its last write is usually another's: the time decides.
 */
export function applied(write: { id: string; at: number }, progress: IndexProgress): boolean {
  return progress.mutationId === write.id || (progress.at !== null && progress.at >= write.at + CLOCK_SKEW_MS);
}

const progressOf = (info: { processedUpToMutation: unknown; processedUpToDatetime: unknown }): IndexProgress => {
  const at = info.processedUpToDatetime ? Date.parse(String(info.processedUpToDatetime)) : Number.NaN;
  return { mutationId: info.processedUpToMutation ? String(info.processedUpToMutation) : null, at: Number.isNaN(at) ? null : at };
};

/** Vectorize takes at most this many ids or vectors per write, and this many ids per `getByIds`. */
export const VECTOR_BATCH = 1000;
const GET_BATCH = 20;

/** Vectorize (V2, asynchronous mutations): one index, the tenant as the namespace. The binding is typed as the legacy `VectorizeIndex`. */
class CloudflareVectors implements VectorStore {
  readonly name = "cloudflare" as const;
  constructor(private readonly index: Vectorize) {}

  async upsert(namespace: string, vectors: IndexedVector[]) {
    let last = { mutationId: "" };
    for (let i = 0; i < vectors.length; i += VECTOR_BATCH) last = await this.index.upsert(vectors.slice(i, i + VECTOR_BATCH).map((v) => ({ ...v, namespace })));
    return last;
  }

  async query(namespace: string, values: number[], opts: { topK: number; filter?: MetadataFilter }) {
    const found = await this.index.query(values, { namespace, topK: opts.topK, filter: opts.filter, returnMetadata: "all" });
    return found.matches.map((m) => ({ id: m.id, score: m.score, metadata: m.metadata as IndexMatch["metadata"] }));
  }

  async deleteByIds(_namespace: string, ids: string[]) {
    let last = { mutationId: "" };
    for (let i = 0; i < ids.length; i += VECTOR_BATCH) last = await this.index.deleteByIds(ids.slice(i, i + VECTOR_BATCH));
    return last;
  }

  async eraseNamespace(namespace: string, ids: string[]) {
    if (ids.length) await this.deleteByIds(namespace, ids);
  }

  async processedUpTo() {
    // Typed as a number in workers-types; Vectorize answers the mutation's UUID and an ISO time.
    return progressOf(await this.index.describe());
  }

  async visible(_namespace: string, ids: string[]) {
    const found = new Set<string>();
    for (let i = 0; i < ids.length; i += GET_BATCH) for (const v of await this.index.getByIds(ids.slice(i, i + GET_BATCH))) found.add(v.id);
    return found;
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

  async eraseNamespace(namespace: string, _ids: string[]) {
    await this.index(namespace).erase();
  }

  async processedUpTo(namespace: string) {
    return progressOf(await this.index(namespace).describe());
  }

  async visible(namespace: string, ids: string[]) {
    return new Set(await this.index(namespace).visible(ids));
  }
}

/** The store `VECTOR_PROVIDER` names; chosen by configuration only, and it says which it is. */
export function vectorStore(env: Env): VectorStore {
  const config = loadConfig(env);
  return config.VECTOR_PROVIDER === "cloudflare" ? new CloudflareVectors(env.VECTORIZE as unknown as Vectorize) : new LocalVectors(env.VECTOR_INDEX, config.LOCAL_VECTOR_DELAY_MS);
}

/** A vector write to check: its mutation, when it was answered, and one id it wrote. */
export interface Write {
  id: string;
  at: number;
  sample: string;
}

/**
 * The writes among these the index has applied: those its progress marker covers, and the rest
 * whose sample vector a search can already find (one lookup per write, twenty to a call). Writes
 * are applied whole and in order, so one visible vector stands for its write.
 */
export async function appliedWrites(store: VectorStore, namespace: string, writes: Write[]): Promise<Set<string>> {
  if (!writes.length) return new Set();
  const progress = await store.processedUpTo(namespace);
  const done = new Set(writes.filter((w) => applied(w, progress)).map((w) => w.id));
  const rest = writes.filter((w) => !done.has(w.id));
  if (rest.length) {
    const seen = await store.visible(namespace, rest.map((w) => w.sample));
    for (const w of rest) if (seen.has(w.sample)) done.add(w.id);
  }
  return done;
}
