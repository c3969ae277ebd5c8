import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, createTenant, expectProblem, expectStatus, quota, tenantD1, type TestTenant } from "../harness";
import { QUEUES } from "../../src/index";
import { LOCAL_FAILURE_TRIGGER, LOCAL_REJECTION_TRIGGER } from "../../src/providers/ai/local";
import { addDocument, createBase, deliverIngest, getDocument, ingestMessage, upload } from "../knowledge";
import { countRows, deliver } from "../runs";

const GUIDE = `# Brand voice

We write like a friendly expert. Short sentences. No jargon.

## Colours

Our primary colour is ultramarine blue. The accent is saffron yellow, used sparingly.

## Words we avoid

Never say "synergy", "leverage" or "disrupt". Prefer plain verbs.

## Audience

Our readers run small studios and agencies. They are busy, sceptical of hype, and they read on their phones between meetings. Every post should earn its place in their feed.

## Formats

Launch posts lead with the benefit, then the proof, then one call to action. Newsletters open with a story from a customer and close with a question.`;

/** The vectors the local index holds for a tenant. */
async function vectorCount(t: TestTenant): Promise<number> {
  const index = env.VECTOR_INDEX.get(env.VECTOR_INDEX.idFromName(t.id));
  return (await index.describe()).vectorCount;
}

const ftsRows = async (t: TestTenant) => (await (await tenantD1(t)).prepare("SELECT count(*) AS n FROM knowledge_chunks_fts").first<{ n: number }>())!.n;

describe("knowledge documents", () => {
  it("are stored in R2, ingested on the queue into chunks, vectors and full text, metered, and listed", async () => {
    const t = await createTenant();
    const { baseId, projectId } = await createBase(t, { chunking: { max_tokens: 100, overlap_tokens: 20 } });
    const res = await upload(t, baseId, "brand.md", GUIDE, "text/markdown", `&attributes=${encodeURIComponent(JSON.stringify({ lang: "en", year: 2026, public: true }))}`);
    expectStatus(res, 202);
    expect(res.body).toMatchObject({ name: "brand.md", knowledge_base_id: baseId, project_id: projectId, status: "processing", version: 1, active_version: null, size: GUIDE.length, attributes: { lang: "en", year: 2026, public: true } });
    expect(res.headers.get("location")).toBe(`/v1/knowledge-bases/${baseId}/documents/${res.body.id}`);
    const stored = await env.ARTIFACTS.list({ prefix: `tenants/${t.id}/knowledge/${res.body.id}/` });
    expect(stored.objects).toHaveLength(1);

    const delivered = await deliverIngest(t, res.body.id);
    expect(delivered.acked).toBe(true);
    const doc = await getDocument(t, baseId, res.body.id);
    expect(doc).toMatchObject({ status: "ready", version: 1, active_version: 1, error: null });
    expect(doc.chunk_count).toBeGreaterThan(1);
    const chunks = await call(`${t.host}/v1/knowledge-bases/${baseId}/documents/${doc.id}/chunks?limit=100`, { token: t.owner.token });
    expectStatus(chunks, 200);
    expect(chunks.body.data).toHaveLength(doc.chunk_count);
    expect(chunks.body.data.map((c: { seq: number }) => c.seq)).toEqual([...Array(doc.chunk_count).keys()]);
    expect(chunks.body.data.every((c: { tokens: number; indexed: boolean }) => c.tokens <= 100 && c.indexed)).toBe(true);
    expect(chunks.body.data.map((c: { text: string }) => c.text).join(" ")).toContain("ultramarine blue");
    expect(doc.token_count).toBe(chunks.body.data.reduce((n: number, c: { tokens: number }) => n + c.tokens, 0));
    expect(await vectorCount(t)).toBe(doc.chunk_count);
    expect(await ftsRows(t)).toBe(doc.chunk_count);

    // Metered like a model call: one usage event for the version, quota used, nothing left reserved.
    const usage = await (await tenantD1(t)).prepare("SELECT source, source_id, model, tokens_in FROM usage_events WHERE tenant_id = ? AND source = 'embedding'").bind(t.id).all();
    expect(usage.results).toEqual([{ source: "embedding", source_id: doc.id, model: "@cf/baai/bge-base-en-v1.5", tokens_in: doc.token_count }]);
    expect(await quota(t)).toEqual({ used: doc.token_count, reserved: 0 });
    // Stored bytes count against the plan's storage.
    expect((await call(`${t.host}/v1/plan`, { token: t.owner.token })).body.usage.storage_bytes).toBe(GUIDE.length);
    // Its events, in the outbox.
    expect(await countRows(t, "SELECT count(*) AS n FROM outbox WHERE subject_id = ? AND type = 'document.ready'", doc.id)).toBe(1);

    const listed = await call(`${t.host}/v1/knowledge-bases/${baseId}/documents?status=ready`, { token: t.owner.token });
    expect(listed.body.data.map((d: { id: string }) => d.id)).toEqual([doc.id]);
    expect((await call(`${t.host}/v1/knowledge-bases/${baseId}/documents?status=failed`, { token: t.owner.token })).body.data).toEqual([]);
  });

  it("read HTML as its text and JSON as path: value lines", async () => {
    const t = await createTenant();
    const { baseId } = await createBase(t);
    const html = `<!doctype html><html><head><title>x</title><style>p{color:red}</style></head><body><script>var secret = "tracking";</script><h1>Returns</h1><p>Refunds within <b>30&nbsp;days</b> &amp; no questions.</p><!-- hidden --></body></html>`;
    const page = await addDocument(t, baseId, "returns.html", html, "text/html; charset=utf-8");
    expect(page.status).toBe("ready");
    const text = (await call(`${t.host}/v1/knowledge-bases/${baseId}/documents/${page.id}/chunks`, { token: t.owner.token })).body.data[0].text;
    expect(text).toContain("Returns");
    expect(text).toContain("Refunds within 30 days & no questions.");
    expect(text).not.toMatch(/<|tracking|color|hidden/);
    const json = await addDocument(t, baseId, "product.json", JSON.stringify({ product: { name: "Lamp", price: 49, tags: ["desk", "led"] } }), "application/json");
    const lines = (await call(`${t.host}/v1/knowledge-bases/${baseId}/documents/${json.id}/chunks`, { token: t.owner.token })).body.data[0].text;
    expect(lines.split("\n")).toEqual(["product.name: Lamp", "product.price: 49", "product.tags.0: desk", "product.tags.1: led"]);
  });

  it("fail with a specific error per document, leaving nothing searchable and nothing reserved", async () => {
    const t = await createTenant();
    const { baseId } = await createBase(t);
    const cases: [string, BodyInit, string, string][] = [
      ["empty.txt", "", "text/plain", "empty_document"],
      ["blank.html", "<html><body><script>x()</script>   </body></html>", "text/html", "empty_document"],
      ["binary.txt", new Uint8Array([0x68, 0x69, 0xff, 0xfe, 0x00, 0xc3]), "text/plain", "unsupported_encoding"],
      ["ebcdic.txt", "hello", "text/plain; charset=x-ebcdic-klingon", "unsupported_encoding"],
      ["broken.json", '{"a": 1,', "application/json", "invalid_json"],
      ["huge.txt", "a ".repeat(2_050_000), "text/plain", "too_many_tokens"],
      ["refused.txt", `Fine text, then ${LOCAL_REJECTION_TRIGGER}.`, "text/plain", "provider_refused"],
    ];
    for (const [name, body, type, code] of cases) {
      const res = await upload(t, baseId, name, body, type);
      expectStatus(res, 202);
      expect((await deliverIngest(t, res.body.id)).acked).toBe(true);
      const doc = await getDocument(t, baseId, res.body.id);
      expect(doc, name).toMatchObject({ status: "failed", active_version: null, chunk_count: null, error: { code } });
      expect(doc.error.message).not.toMatch(/could not be parsed/i);
      expect(await countRows(t, "SELECT count(*) AS n FROM outbox WHERE subject_id = ? AND type = 'document.failed'", doc.id)).toBe(1);
    }
    expect(await countRows(t, "SELECT count(*) AS n FROM knowledge_chunks WHERE tenant_id = ?", t.id)).toBe(0);
    expect(await vectorCount(t)).toBe(0);
    expect(await quota(t)).toEqual({ used: 0, reserved: 0 });
    const failed = await call(`${t.host}/v1/knowledge-bases/${baseId}/documents?status=failed`, { token: t.owner.token });
    expect(failed.body.data).toHaveLength(cases.length);
  });

  it("retry a transient embedding failure with nothing left behind, and fail for good from the dead-letter queue", async () => {
    const t = await createTenant();
    const { baseId } = await createBase(t);
    const res = await upload(t, baseId, "flaky.txt", `Some text ${LOCAL_FAILURE_TRIGGER}`);
    const first = await deliverIngest(t, res.body.id);
    expect(first).toMatchObject({ acked: false, retried: true });
    const doc = await getDocument(t, baseId, res.body.id);
    expect(doc).toMatchObject({ status: "processing", active_version: null });
    expect(await countRows(t, "SELECT count(*) AS n FROM knowledge_documents WHERE id = ? AND lease_token IS NULL", doc.id)).toBe(1);
    expect(await countRows(t, "SELECT count(*) AS n FROM knowledge_chunks WHERE document_id = ?", doc.id)).toBe(0);
    expect(await quota(t)).toEqual({ used: 0, reserved: 0 });
    // Its retries used up, the message reaches the dead-letter consumer.
    expect((await deliver(QUEUES.ingestDead, ingestMessage(t, doc.id))).acked).toBe(true);
    expect(await getDocument(t, baseId, doc.id)).toMatchObject({ status: "failed", error: { code: "ingest_exhausted" } });
    expect(await countRows(t, "SELECT count(*) AS n FROM outbox WHERE subject_id = ? AND type = 'document.failed'", doc.id)).toBe(1);
    expect(await vectorCount(t)).toBe(0);
  });

  it("answer bad uploads naming the field, before storing anything", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const { baseId } = await createBase(t);
    const pdf = await upload(t, baseId, "deck.pdf", "%PDF-1.7", "application/pdf");
    expectProblem(pdf, 415, "UNSUPPORTED_MEDIA_TYPE");
    expect(pdf.body.detail).toContain("text/plain, text/markdown, text/html, application/json");
    expect(pdf.body.errors[0]).toMatchObject({ in: "header", field: "content-type" });
    const big = await upload(t, baseId, "big.txt", new Uint8Array(10 * 1024 * 1024 + 1).fill(97));
    expectProblem(big, 413, "PAYLOAD_TOO_LARGE");
    const tooMany = await upload(t, baseId, "a.txt", "x", "text/plain", `&attributes=${encodeURIComponent(JSON.stringify(Object.fromEntries([...Array(17).keys()].map((i) => [`k${i}`, i]))))}`);
    expectProblem(tooMany, 400, "VALIDATION_FAILED");
    expect(tooMany.body.errors[0]).toMatchObject({ in: "query", field: "attributes" });
    const nested = await upload(t, baseId, "a.txt", "x", "text/plain", "", { "tessera-attributes": JSON.stringify({ owner: { name: "x" } }) });
    expectProblem(nested, 400, "VALIDATION_FAILED");
    expect(nested.body.errors[0]).toMatchObject({ in: "header", field: "tessera-attributes" });
    const noName = await call(`${t.host}/v1/knowledge-bases/${baseId}/documents`, { token: t.owner.token, rawBody: "x", headers: { "content-type": "text/plain" } });
    expectProblem(noName, 400, "VALIDATION_FAILED");
    expect(noName.body.errors[0]).toMatchObject({ in: "query", field: "name" });
    // Another tenant's base is not found, for uploads and reads alike; its token is not valid here.
    expectProblem(await upload(other, baseId, "a.txt", "x"), 404, "NOT_FOUND");
    expectProblem(await call(`${other.host}/v1/knowledge-bases/${baseId}/documents`, { token: other.owner.token }), 404, "NOT_FOUND");
    expectProblem(await call(`${t.host}/v1/knowledge-bases/${baseId}/documents`, { token: other.owner.token }), 401, "INVALID_TOKEN");
    expect((await env.ARTIFACTS.list({ prefix: `tenants/${t.id}/knowledge/` })).objects).toEqual([]);
    expect(await countRows(t, "SELECT count(*) AS n FROM knowledge_documents WHERE tenant_id = ?", t.id)).toBe(0);
  });

  it("make a re-upload the next version, swapping chunks only when it is ready", async () => {
    const t = await createTenant();
    const { baseId } = await createBase(t);
    const v1 = await addDocument(t, baseId, "faq.txt", "Shipping takes three days.");
    const oldChunks = await countRows(t, "SELECT count(*) AS n FROM knowledge_chunks WHERE document_id = ? AND version = 1", v1.id);
    expect(oldChunks).toBe(1);
    const again = await upload(t, baseId, "faq.txt", "Shipping takes five days now. Returns are free.");
    expectStatus(again, 202);
    expect(again.body).toMatchObject({ id: v1.id, version: 2, active_version: 1, status: "processing" });
    // The first version's original is replaced; only the new one is stored.
    expect(await eventuallyObjects(t, v1.id)).toBe(1);
    // Still the old chunk until the new version is ingested.
    const before = await call(`${t.host}/v1/knowledge-bases/${baseId}/documents/${v1.id}/chunks`, { token: t.owner.token });
    expect(before.body.data.map((c: { text: string }) => c.text)).toEqual(["Shipping takes three days."]);
    await deliverIngest(t, v1.id, 2);
    const v2 = await getDocument(t, baseId, v1.id);
    expect(v2).toMatchObject({ version: 2, active_version: 2, status: "ready" });
    const after = await call(`${t.host}/v1/knowledge-bases/${baseId}/documents/${v1.id}/chunks`, { token: t.owner.token });
    expect(after.body.data.map((c: { text: string }) => c.text)).toEqual(["Shipping takes five days now. Returns are free."]);
    expect(await countRows(t, "SELECT count(*) AS n FROM knowledge_chunks WHERE document_id = ?", v1.id)).toBe(1);
    expect(await vectorCount(t)).toBe(1);
    expect(await ftsRows(t)).toBe(1);
    // A late delivery of version 1's message does nothing.
    expect((await deliverIngest(t, v1.id, 1)).acked).toBe(true);
    expect(await getDocument(t, baseId, v1.id)).toEqual(v2);
  });

  it("ingest once when the message is delivered twice, even at the same time", async () => {
    const t = await createTenant();
    const { baseId } = await createBase(t);
    const res = await upload(t, baseId, "twice.txt", GUIDE);
    const deliveries = await Promise.all([deliverIngest(t, res.body.id), deliverIngest(t, res.body.id, 1, 2)]);
    // One ingests; the other finds it held (retried) or done (acked). A retry delivered later finds it ready.
    expect(deliveries.some((d) => d.acked)).toBe(true);
    expect((await deliverIngest(t, res.body.id, 1, 3)).acked).toBe(true);
    const doc = await getDocument(t, baseId, res.body.id);
    expect(doc.status).toBe("ready");
    expect(await countRows(t, "SELECT count(*) AS n FROM knowledge_chunks WHERE document_id = ?", doc.id)).toBe(doc.chunk_count);
    expect(await countRows(t, "SELECT count(*) AS n FROM usage_events WHERE source_id = ?", doc.id)).toBe(1);
    expect(await countRows(t, "SELECT count(*) AS n FROM outbox WHERE subject_id = ? AND type = 'document.ready'", doc.id)).toBe(1);
    expect(await vectorCount(t)).toBe(doc.chunk_count);
    expect(await quota(t)).toEqual({ used: doc.token_count, reserved: 0 });
  });

  it("ingested side by side all end indexed: no chunk is left waiting on the index", async () => {
    const t = await createTenant();
    const { baseId } = await createBase(t, { chunking: { max_tokens: 100, overlap_tokens: 0 } });
    const uploads = await Promise.all([0, 1, 2, 3].map((i) => upload(t, baseId, `side-${i}.md`, `${GUIDE}\n\nCopy ${i}.`, "text/markdown")));
    await Promise.all(uploads.map((u) => deliverIngest(t, u.body.id)));
    expect(await countRows(t, "SELECT count(*) AS n FROM knowledge_documents WHERE tenant_id = ? AND status = 'ready'", t.id)).toBe(4);
    // Whichever write the index applied last, each document's own is known applied: no pending copies remain.
    expect(await countRows(t, "SELECT count(*) AS n FROM knowledge_chunks WHERE tenant_id = ? AND (pending = 1 OR embedding IS NOT NULL)", t.id)).toBe(0);
  });

  it("are deleted with their chunks, vectors, full-text rows and original, answering the counts", async () => {
    const t = await createTenant();
    const { baseId } = await createBase(t, { chunking: { max_tokens: 100, overlap_tokens: 0 } });
    const doc = await addDocument(t, baseId, "guide.md", GUIDE, "text/markdown");
    const del = await call(`${t.host}/v1/knowledge-bases/${baseId}/documents/${doc.id}`, { method: "DELETE", token: t.owner.token });
    expectStatus(del, 200);
    expect(del.body).toEqual({ id: doc.id, deleted: true, removed: { chunks: doc.chunk_count, vectors: doc.chunk_count, full_text_rows: doc.chunk_count, bytes: GUIDE.length } });
    expect(await vectorCount(t)).toBe(0);
    expect(await ftsRows(t)).toBe(0);
    expect((await env.ARTIFACTS.list({ prefix: `tenants/${t.id}/knowledge/` })).objects).toEqual([]);
    expect(await countRows(t, "SELECT count(*) AS n FROM outbox WHERE subject_id = ? AND type = 'document.deleted'", doc.id)).toBe(1);
    expectProblem(await call(`${t.host}/v1/knowledge-bases/${baseId}/documents/${doc.id}`, { token: t.owner.token }), 404, "NOT_FOUND");
    expectProblem(await call(`${t.host}/v1/knowledge-bases/${baseId}/documents/${doc.id}`, { method: "DELETE", token: t.owner.token }), 404, "NOT_FOUND");
  });

  it("deleted while being ingested leave nothing behind, and the embeddings made are still billed once", async () => {
    const t = await createTenant();
    const { baseId } = await createBase(t, { chunking: { max_tokens: 100, overlap_tokens: 0 } });
    for (let i = 0; i < 3; i++) {
      const res = await upload(t, baseId, `race-${i}.md`, GUIDE.repeat(20), "text/markdown");
      const [, del] = await Promise.all([
        deliverIngest(t, res.body.id),
        // Lands somewhere during the ingestion (before, in the middle, or after).
        new Promise((r) => setTimeout(r, i * 15)).then(() => call(`${t.host}/v1/knowledge-bases/${baseId}/documents/${res.body.id}`, { method: "DELETE", token: t.owner.token })),
      ]);
      expectStatus(del, 200);
    }
    expect(await countRows(t, "SELECT count(*) AS n FROM knowledge_chunks WHERE tenant_id = ?", t.id)).toBe(0);
    expect(await ftsRows(t)).toBe(0);
    expect(await vectorCount(t)).toBe(0);
    expect((await env.ARTIFACTS.list({ prefix: `tenants/${t.id}/knowledge/` })).objects).toEqual([]);
    expect((await quota(t)).reserved).toBe(0);
  });

  it("go with their knowledge base: rows, chunks, vectors, full text and originals", async () => {
    const t = await createTenant();
    const { baseId, projectId } = await createBase(t, { chunking: { max_tokens: 100, overlap_tokens: 0 } });
    const { baseId: kept } = await createBase(t, { name: "Kept" }, projectId);
    const a = await addDocument(t, baseId, "a.md", GUIDE, "text/markdown");
    await addDocument(t, baseId, "b.md", "Another document.");
    await upload(t, baseId, "c.md", "Still processing.");
    const survivor = await addDocument(t, kept, "kept.md", "This one stays.");
    expectStatus(await call(`${t.host}/v1/knowledge-bases/${baseId}`, { method: "DELETE", token: t.owner.token }), 204);
    expect(await countRows(t, "SELECT count(*) AS n FROM knowledge_documents WHERE knowledge_base_id = ?", baseId)).toBe(0);
    expect(await countRows(t, "SELECT count(*) AS n FROM knowledge_chunks WHERE knowledge_base_id = ?", baseId)).toBe(0);
    expect(await countRows(t, "SELECT count(*) AS n FROM outbox WHERE type = 'document.deleted'")).toBe(3);
    expect(await vectorCount(t)).toBe(1);
    expect(await ftsRows(t)).toBe(1);
    expect((await env.ARTIFACTS.list({ prefix: `tenants/${t.id}/knowledge/` })).objects).toHaveLength(1);
    expect((await getDocument(t, kept, survivor.id)).status).toBe("ready");
    // The ingestion still queued for the deleted base finds nothing to do.
    expect((await deliverIngest(t, a.id)).acked).toBe(true);
  });

  it("are at most 10,000 to a base; a new version of one is still taken", async () => {
    const t = await createTenant();
    const { baseId, projectId } = await createBase(t);
    const kept = await addDocument(t, baseId, "kept.txt", "A document that gets new versions.");
    const d1 = await tenantD1(t);
    await d1
      .prepare(
        `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 9999)
         INSERT INTO knowledge_documents (id, tenant_id, knowledge_base_id, project_id, name, version, status, content_type, size, sha256, r2_key, created_by)
         SELECT 'doc_filler' || i, ?1, ?2, ?3, 'filler-' || i, 1, 'failed', 'text/plain', 0, 's', 'k' || i, 'u' FROM n`,
      )
      .bind(t.id, baseId, projectId)
      .run();
    const over = await upload(t, baseId, "one-too-many.txt", "x");
    expectProblem(over, 403, "PLAN_LIMIT");
    expect(over.body.detail).toContain("10000 documents");
    expect((await env.ARTIFACTS.list({ prefix: `tenants/${t.id}/knowledge/` })).objects).toHaveLength(1);
    expectStatus(await upload(t, baseId, "kept.txt", "Its second version."), 202);
    expect((await getDocument(t, baseId, kept.id)).version).toBe(2);
  });

  it("count against the plan's storage", async () => {
    const t = await createTenant();
    const { baseId } = await createBase(t);
    const d1 = await tenantD1(t);
    const plan = await env.CONTROL_DB.prepare("SELECT p.storage_bytes AS bytes FROM plans p JOIN tenants t ON t.plan_id = p.id WHERE t.id = ?").bind(t.id).first<{ bytes: number }>();
    // Artifacts already fill all but 10 bytes of it.
    await d1
      .prepare("INSERT INTO artifact_versions (tenant_id, artifact_id, version, r2_key, sha256, size, content_type, created_by) VALUES (?, 'art_x', 1, 'k', 's', ?, 'text/plain', 'u')")
      .bind(t.id, plan!.bytes - 10)
      .run();
    expectProblem(await upload(t, baseId, "big.txt", "x".repeat(11)), 403, "PLAN_LIMIT");
    expectStatus(await upload(t, baseId, "small.txt", "x".repeat(10)), 202);
    // Re-uploading the name counts its new size in place of the old.
    expectStatus(await upload(t, baseId, "small.txt", "y".repeat(10)), 202);
    expect((await env.ARTIFACTS.list({ prefix: `tenants/${t.id}/knowledge/` })).objects).toHaveLength(1);
  });
});

async function eventuallyObjects(t: TestTenant, docId: string): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const n = (await env.ARTIFACTS.list({ prefix: `tenants/${t.id}/knowledge/${docId}/` })).objects.length;
    if (n === 1) return n;
    await new Promise((r) => setTimeout(r, 20));
  }
  return (await env.ARTIFACTS.list({ prefix: `tenants/${t.id}/knowledge/${docId}/` })).objects.length;
}
