import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { STUCK_AFTER_MS } from "../../src/runs/sweeper";
import { call, createTenant, expectStatus, tenantD1, type TestTenant } from "../harness";
import { createBase, search, upload } from "../knowledge";

const status = async (t: TestTenant, baseId: string, id: string) => (await call(`${t.host}/v1/knowledge-bases/${baseId}/documents/${id}`, { token: t.owner.token })).body.status;

describe("documents on the real queue", () => {
  it("are ingested by the runtime's delivery and searchable once ready", async () => {
    const t = await createTenant();
    const { baseId } = await createBase(t);
    const res = await upload(t, baseId, "otters.md", "Sea otters hold hands while they sleep so they do not drift apart.", "text/markdown");
    expectStatus(res, 202);
    await expect.poll(() => status(t, baseId, res.body.id), { timeout: 15_000, interval: 100 }).toBe("ready");
    const found = await search(t, baseId, { query: "why do otters hold hands" });
    expect(found.body.data[0].document.id).toBe(res.body.id);
  }, 30_000);

  it("left processing without a message are queued again by the cron trigger", async () => {
    const t = await createTenant();
    const { baseId } = await createBase(t);
    const res = await upload(t, baseId, "sent.md", "A document whose queue message was sent.", "text/markdown");
    await expect.poll(() => status(t, baseId, res.body.id), { timeout: 15_000, interval: 100 }).toBe("ready");
    // Another whose send failed long ago: processing, no message anywhere (its bytes are the first's).
    const db = await tenantD1(t);
    const lostId = `doc_${"0".repeat(10)}${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
    const longAgo = new Date(Date.now() - STUCK_AFTER_MS - 60_000).toISOString();
    await db
      .prepare(
        `INSERT INTO knowledge_documents (id, tenant_id, knowledge_base_id, project_id, name, version, status, content_type, size, sha256, r2_key, created_by, created_at, updated_at)
         SELECT ?, tenant_id, knowledge_base_id, project_id, 'lost.md', 1, 'processing', content_type, size, sha256, r2_key, created_by, ?, ? FROM knowledge_documents WHERE id = ?`,
      )
      .bind(lostId, longAgo, longAgo, res.body.id)
      .run();
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: "*/5 * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);
    await expect.poll(() => status(t, baseId, lostId), { timeout: 15_000, interval: 100 }).toBe("ready");
  }, 30_000);
});
