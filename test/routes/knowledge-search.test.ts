import { createExecutionContext, createMessageBatch, env, getQueueResult } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import worker, { QUEUES } from "../../src/index";
import { call, createTenant, expectProblem, expectStatus, quota, type TestTenant } from "../harness";
import { addDocument, createBase, getDocument, ingestMessage, search, upload } from "../knowledge";
import { countRows } from "../runs";

const DOCS: [string, string, Record<string, string | number | boolean>][] = [
  ["colours.md", "Our primary colour is ultramarine blue. The accent colour is saffron yellow, used sparingly on buttons.", { lang: "en", year: 2024, public: true }],
  ["shipping.md", "Orders ship from Rotterdam within two working days. Express delivery reaches Germany overnight.", { lang: "en", year: 2025, public: false }],
  ["retours.md", "Retourneren kan binnen dertig dagen. Het retourlabel zit in de doos.", { lang: "nl", year: 2026, public: true }],
  ["voice.md", "We write like a friendly expert: short sentences, plain verbs, no jargon such as synergy.", { lang: "en", year: 2026, public: true }],
];

async function seeded(t: TestTenant, projectId?: string) {
  const { baseId, projectId: project } = await createBase(t, {}, projectId);
  const docs: Record<string, string> = {};
  for (const [name, text, attributes] of DOCS) {
    const doc = await addDocument(t, baseId, name, text, "text/markdown", `&attributes=${encodeURIComponent(JSON.stringify(attributes))}`);
    expect(doc.status).toBe("ready");
    docs[name] = doc.id;
  }
  return { baseId, projectId: project, docs };
}

const names = (res: { body: { data: { document: { name: string } }[] } }) => res.body.data.map((r) => r.document.name);

describe("knowledge search", () => {
  it("finds chunks by meaning and by words, fusing both in hybrid mode, with each method's rank and score", async () => {
    const t = await createTenant();
    const { baseId, docs } = await seeded(t);
    const hybrid = await search(t, baseId, { query: "what colour are our buttons" });
    expectStatus(hybrid, 200);
    expect(hybrid.body).toMatchObject({ mode: "hybrid", providers: { embedding: "local", vectors: "local" } });
    expect(hybrid.body.usage.embedding_tokens).toBeGreaterThan(0);
    const top = hybrid.body.data[0];
    expect(top).toMatchObject({ knowledge_base_id: baseId, seq: 0, document: { id: docs["colours.md"], name: "colours.md", attributes: { lang: "en", year: 2024, public: true } } });
    expect(top.text).toContain("ultramarine");
    expect(top.scoring).toMatchObject({ vector_rank: 1, keyword_rank: 1 });
    expect(top.score).toBeCloseTo(1, 5);
    // Scores fall with rank; each result carries the methods that found it.
    const scores = hybrid.body.data.map((r: { score: number }) => r.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));

    const keyword = await search(t, baseId, { query: "Rotterdam", mode: "keyword" });
    expect(names(keyword)).toEqual(["shipping.md"]);
    expect(keyword.body.data[0].scoring).toMatchObject({ vector_rank: null, vector_score: null, keyword_rank: 1 });
    expect(keyword.body.data[0].score).toBe(keyword.body.data[0].scoring.keyword_score);
    expect(keyword.body).toMatchObject({ providers: { embedding: null }, usage: { embedding_tokens: 0 } });
    // Stemming: "shipped" finds "ship".
    expect(names(await search(t, baseId, { query: "shipped", mode: "keyword" }))).toEqual(["shipping.md"]);
    // FTS5 syntax in the query is just text.
    expectStatus(await search(t, baseId, { query: 'colour" OR NEAR(* -', mode: "keyword" }), 200);

    const vector = await search(t, baseId, { query: "express delivery to germany", mode: "vector", top_k: 2 });
    expect(vector.body.data).toHaveLength(2);
    expect(names(vector)[0]).toBe("shipping.md");
    expect(vector.body.data[0].scoring).toMatchObject({ keyword_rank: null, vector_rank: 1 });
    expect(vector.body.data[0].score).toBe(vector.body.data[0].scoring.vector_score);
    const strict = await search(t, baseId, { query: "express delivery to germany", mode: "vector", score_threshold: vector.body.data[0].score });
    expect(names(strict)).toEqual(["shipping.md"]);
  });

  it("filters by document attributes with values and operators", async () => {
    const t = await createTenant();
    const { baseId } = await seeded(t);
    const q = (filters: Record<string, unknown>) => search(t, baseId, { query: "colour shipping retourneren jargon", filters, top_k: 50 }).then((r) => names(r).sort());
    expect(await q({ lang: "nl" })).toEqual(["retours.md"]);
    expect(await q({ year: { gte: 2025 } })).toEqual(["retours.md", "shipping.md", "voice.md"]);
    expect(await q({ year: { gt: 2024, lt: 2026 } })).toEqual(["shipping.md"]);
    expect(await q({ lang: { in: ["nl", "de"] } })).toEqual(["retours.md"]);
    expect(await q({ lang: { nin: ["nl"] }, public: true })).toEqual(["colours.md", "voice.md"]);
    expect(await q({ public: { ne: true } })).toEqual(["shipping.md"]);
    expect(await q({ lang: { eq: "en" }, year: { lte: 2024 } })).toEqual(["colours.md"]);
  });

  it("sees a document's new attributes at the next search, without re-embedding it", async () => {
    const t = await createTenant();
    const { baseId, docs } = await seeded(t);
    const before = await quota(t);
    const patched = await call(`${t.host}/v1/knowledge-bases/${baseId}/documents/${docs["retours.md"]}`, { method: "PATCH", token: t.owner.token, body: { attributes: { lang: "en", year: 2027 } } });
    expectStatus(patched, 200);
    expect(patched.body.attributes).toEqual({ lang: "en", year: 2027 });
    const found = await search(t, baseId, { query: "retourneren", mode: "keyword", filters: { year: 2027 } });
    expect(names(found)).toEqual(["retours.md"]);
    expect(await quota(t)).toEqual(before);
    expect(await countRows(t, "SELECT count(*) AS n FROM outbox WHERE subject_id = ? AND type = 'document.updated'", docs["retours.md"])).toBe(1);
    const bad = await call(`${t.host}/v1/knowledge-bases/${baseId}/documents/${docs["retours.md"]}`, { method: "PATCH", token: t.owner.token, body: { attributes: { nested: { no: 1 } } } });
    expectProblem(bad, 400, "VALIDATION_FAILED");
    expect(bad.body.errors[0].field).toMatch(/^attributes\.nested/);
  });

  it("answers bad searches naming the field", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const { baseId } = await seeded(t);
    const cases: [Record<string, unknown>, string][] = [
      [{ query: "   " }, "query"],
      [{ query: "x", top_k: 0 }, "top_k"],
      [{ query: "x", top_k: 51 }, "top_k"],
      [{ query: "x", mode: "fuzzy" }, "mode"],
      [{ query: "x", filters: { lang: { like: "e%" } } }, "filters.lang"],
      [{ query: "x", filters: { lang: { in: [] } } }, "filters.lang.in"],
      [{ query: "x", filters: { colour: "blue" } }, "filters.colour"],
    ];
    for (const [body, field] of cases) {
      const res = await search(t, baseId, body);
      expectProblem(res, 400, "VALIDATION_FAILED");
      expect(res.body.errors.map((e: { field: string }) => e.field), JSON.stringify(body)).toContain(field);
    }
    expectProblem(await search(t, "kb_absent", { query: "x" }), 404, "NOT_FOUND");
    expectProblem(await search(other, baseId, { query: "x" }), 404, "NOT_FOUND");
    expectProblem(await search(t, baseId, { query: "x" }, other.owner.token), 401, "INVALID_TOKEN");
    // A refused search leaves no reservation behind.
    expect((await quota(t)).reserved).toBe(0);
  });

  it("never returns another tenant's chunk, even when both hold the same document", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const inA = await seeded(a);
    const inB = await seeded(b);
    for (const mode of ["hybrid", "vector", "keyword"]) {
      const fromA = await search(a, inA.baseId, { query: "ultramarine blue colour", mode, top_k: 50 });
      const fromB = await search(b, inB.baseId, { query: "ultramarine blue colour", mode, top_k: 50 });
      expect(fromA.body.data.length).toBeGreaterThan(0);
      expect(fromA.body.data.every((r: { document: { id: string } }) => Object.values(inA.docs).includes(r.document.id))).toBe(true);
      expect(fromB.body.data.every((r: { document: { id: string } }) => Object.values(inB.docs).includes(r.document.id))).toBe(true);
      // Same text, same scores: the two tenants' results mirror each other without mixing.
      expect(fromA.body.data.map((r: { score: number }) => r.score)).toEqual(fromB.body.data.map((r: { score: number }) => r.score));
    }
  });

  it("spans several bases of one project, and refuses bases of different projects", async () => {
    const t = await createTenant();
    const first = await seeded(t);
    const { baseId: second } = await createBase(t, { name: "Second" }, first.projectId);
    await addDocument(t, second, "more-colours.md", "Secondary colour: ultramarine tints at 40 percent.");
    const both = await call(`${t.host}/v1/knowledge-bases/search`, { token: t.owner.token, body: { knowledge_base_ids: [first.baseId, second], query: "ultramarine", mode: "keyword" } });
    expectStatus(both, 200);
    expect(names(both).sort()).toEqual(["colours.md", "more-colours.md"]);
    expect(new Set(both.body.data.map((r: { knowledge_base_id: string }) => r.knowledge_base_id))).toEqual(new Set([first.baseId, second]));
    const { baseId: elsewhere } = await createBase(t);
    const mixed = await call(`${t.host}/v1/knowledge-bases/search`, { token: t.owner.token, body: { knowledge_base_ids: [first.baseId, elsewhere], query: "x" } });
    expectProblem(mixed, 400, "VALIDATION_FAILED");
    expect(mixed.body.errors[0].field).toBe("knowledge_base_ids");
    const absent = await call(`${t.host}/v1/knowledge-bases/search`, { token: t.owner.token, body: { knowledge_base_ids: [first.baseId, "kb_nope"], query: "x" } });
    expectProblem(absent, 404, "NOT_FOUND");
  });

  it("meters the query's embedding through the usage path", async () => {
    const t = await createTenant();
    const { baseId } = await seeded(t);
    const before = await quota(t);
    const res = await search(t, baseId, { query: "ultramarine blue colour on buttons", mode: "vector" });
    expect(await quota(t)).toEqual({ used: before.used + res.body.usage.embedding_tokens, reserved: 0 });
    expect(await countRows(t, "SELECT count(*) AS n FROM usage_events WHERE source = 'embedding' AND source_id IS NULL AND tokens_in = ?", res.body.usage.embedding_tokens)).toBe(1);
  });

  it("finds a ready document at once while the index has not applied its vectors yet", async () => {
    const t = await createTenant();
    const { baseId } = await createBase(t);
    const res = await upload(t, baseId, "fresh.md", "The new mascot is a cheerful otter called Pim.", "text/markdown");
    // Ingested by a consumer whose index makes writes visible only after a minute, as Vectorize may.
    const batch = createMessageBatch(QUEUES.ingest, [{ id: "m1", timestamp: new Date(), attempts: 1, body: ingestMessage(t, res.body.id) }]);
    await worker.queue(batch, { ...env, LOCAL_VECTOR_DELAY_MS: "60000" });
    await getQueueResult(batch, createExecutionContext());
    expect((await getDocument(t, baseId, res.body.id)).status).toBe("ready");
    const chunk = async () => (await call(`${t.host}/v1/knowledge-bases/${baseId}/documents/${res.body.id}/chunks`, { token: t.owner.token })).body.data[0];
    expect((await chunk()).indexed).toBe(false);

    const now = await search(t, baseId, { query: "what animal is the mascot", mode: "vector" });
    expect(names(now)).toEqual(["fresh.md"]);
    expect((await chunk()).indexed).toBe(false);

    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(Date.now() + 61_000);
      // The index has it now; this search sees that and retires the exact copy.
      const later = await search(t, baseId, { query: "what animal is the mascot", mode: "vector" });
      expect(names(later)).toEqual(["fresh.md"]);
      await expect.poll(async () => (await chunk()).indexed).toBe(true);
      expect(await countRows(t, "SELECT count(*) AS n FROM knowledge_chunks WHERE document_id = ? AND embedding IS NOT NULL", res.body.id)).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});
