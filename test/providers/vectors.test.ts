import { env } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import type { MetadataFilter } from "../../durable-objects/vector-index";
import { appliedWrites, vectorStore } from "../../src/providers/vectors";

const ns = () => `ten_${crypto.randomUUID()}`;
const unit = (...xs: number[]) => {
  const n = Math.hypot(...xs);
  return xs.map((x) => x / n);
};

describe("the local vector index (VECTOR_PROVIDER=local)", () => {
  it("ranks by cosine similarity, filters on metadata, and deletes", async () => {
    const store = vectorStore(env);
    expect(store.name).toBe("local");
    const tenant = ns();
    await store.upsert(tenant, [
      { id: "a", values: unit(1, 0, 0), metadata: { kb: "kb1", year: 2024, lang: "en" } },
      { id: "b", values: unit(1, 1, 0), metadata: { kb: "kb1", year: 2025, lang: "de" } },
      { id: "c", values: unit(0, 1, 0), metadata: { kb: "kb2", year: 2026, lang: "en" } },
    ]);
    const all = await store.query(tenant, unit(1, 0.1, 0), { topK: 10 });
    expect(all.map((m) => m.id)).toEqual(["a", "b", "c"]);
    expect(all[0]!.score).toBeGreaterThan(0.99);
    expect(all[0]!.metadata).toEqual({ kb: "kb1", year: 2024, lang: "en" });
    expect((await store.query(tenant, unit(1, 0, 0), { topK: 1 })).map((m) => m.id)).toEqual(["a"]);
    expect((await store.query(tenant, unit(1, 0, 0), { topK: 10, filter: { kb: "kb2" } })).map((m) => m.id)).toEqual(["c"]);
    expect((await store.query(tenant, unit(1, 0, 0), { topK: 10, filter: { year: { $gte: 2025 }, lang: { $in: ["de", "fr"] } } })).map((m) => m.id)).toEqual(["b"]);
    await store.deleteByIds(tenant, ["a"]);
    expect((await store.query(tenant, unit(1, 0, 0), { topK: 10 })).map((m) => m.id)).toEqual(["b", "c"]);
    // Replacing a vector by id.
    await store.upsert(tenant, [{ id: "c", values: unit(1, 0, 0), metadata: { kb: "kb2" } }]);
    expect((await store.query(tenant, unit(1, 0, 0), { topK: 1 }))[0]).toMatchObject({ id: "c", metadata: { kb: "kb2" } });
  });

  it("never answers from another namespace, even for identical vectors", async () => {
    const store = vectorStore(env);
    const [a, b] = [ns(), ns()];
    await store.upsert(a, [{ id: "same", values: unit(1, 2, 3), metadata: { owner: "a" } }]);
    await store.upsert(b, [{ id: "same", values: unit(1, 2, 3), metadata: { owner: "b" } }]);
    expect((await store.query(a, unit(1, 2, 3), { topK: 10 })).map((m) => m.metadata?.owner)).toEqual(["a"]);
    expect((await store.query(b, unit(1, 2, 3), { topK: 10 })).map((m) => m.metadata?.owner)).toEqual(["b"]);
    expect(await store.query(ns(), unit(1, 2, 3), { topK: 10 })).toEqual([]);
  });

  it("makes writes searchable only once processed, and says which mutation it has processed", async () => {
    const store = vectorStore({ ...env, LOCAL_VECTOR_DELAY_MS: "60000" });
    const tenant = ns();
    const { mutationId } = await store.upsert(tenant, [{ id: "late", values: unit(0, 0, 1) }]);
    expect(await store.query(tenant, unit(0, 0, 1), { topK: 5 })).toEqual([]);
    expect(await store.processedUpTo(tenant)).toEqual({ mutationId: null, at: null });
    // The clock moves past the visibility delay rather than being waited for.
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(Date.now() + 61_000);
      expect((await store.query(tenant, unit(0, 0, 1), { topK: 5 })).map((m) => m.id)).toEqual(["late"]);
      expect((await store.processedUpTo(tenant)).mutationId).toBe(mutationId);
    } finally {
      vi.useRealTimers();
    }
  });

  it("says which ids searches can find, before and after a delayed write is applied", async () => {
    const store = vectorStore({ ...env, LOCAL_VECTOR_DELAY_MS: "60000" });
    const tenant = ns();
    const { mutationId } = await store.upsert(tenant, [{ id: "soon", values: unit(1, 1, 0) }]);
    await store.upsert(tenant, [{ id: "after", values: unit(0, 1, 1) }]);
    expect(await store.visible(tenant, ["soon", "never"])).toEqual(new Set());
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(Date.now() + 61_000);
      expect(await store.visible(tenant, ["soon", "never"])).toEqual(new Set(["soon"]));
      // Not the index's last write, and made moments before it: found applied by looking for its vector.
      const at = Date.now();
      expect(await appliedWrites(store, tenant, [{ id: mutationId, at, sample: "soon" }, { id: "other", at, sample: "never" }])).toEqual(new Set([mutationId]));
    } finally {
      vi.useRealTimers();
    }
  });

  it("refuses a vector whose dimensions differ from the index's", async () => {
    const store = vectorStore(env);
    const tenant = ns();
    await store.upsert(tenant, [{ id: "x", values: [1, 0, 0] }]);
    await expect(store.upsert(tenant, [{ id: "y", values: [1, 0] }])).rejects.toThrow(/dimensions/);
  });
});

describe("Vectorize's metadata filter", () => {
  it("compares every operator as Vectorize documents it (a missing field is null), in the index's query", async () => {
    const store = vectorStore(env);
    const tenant = ns();
    await store.upsert(tenant, [{ id: "m", values: unit(1, 0, 0), metadata: { a: 1, s: "x", b: true } }]);
    const passes = async (filter: MetadataFilter) => (await store.query(tenant, unit(1, 0, 0), { topK: 5, filter })).some((match) => match.id === "m");
    expect(await passes({ a: 1, s: "x" })).toBe(true);
    expect(await passes({ a: { $ne: 1 } })).toBe(false);
    expect(await passes({ a: { $gt: 0, $lt: 2 } })).toBe(true);
    expect(await passes({ a: { $gte: 2 } })).toBe(false);
    expect(await passes({ s: { $nin: ["x", "y"] } })).toBe(false);
    expect(await passes({ s: { $in: ["x", "y"] } })).toBe(true);
    expect(await passes({ missing: null })).toBe(true);
    expect(await passes({ missing: { $ne: "z" } })).toBe(true);
    expect(await passes({ missing: { $lt: 5 } })).toBe(false);
    expect(await passes({ b: { $eq: true } })).toBe(true);
    expect(await passes({ b: false })).toBe(false);
    await expect(passes({ a: { $like: 1 } as never })).rejects.toThrow(/operator/);
  });
});
