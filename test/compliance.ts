import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { compactVerify, createLocalJWKSet } from "jose";
import { expect } from "vitest";
import { QUEUES } from "../src/index";
import { atTime } from "./clock";
import { act, createPost } from "./content";
import { call, expectStatus, PLATFORM, type TestTenant } from "./harness";
import { addDocument, createBase } from "./knowledge";
import { deliver, deliverRun, startRun } from "./runs";
import { createEndpoint } from "./webhooks";

/** What `seed` made, by kind. */
export interface Seeded {
  projectId: string;
  conversationId: string;
  runId: string;
  artifactIds: string[];
  documentId: string;
  postId: string;
  keyId: string;
  exportId: string;
  accountId: string | null;
}

/**
 * Fills a tenant through the API with every kind of data as `token`'s holder: a project, an agent
 * and a run (its output artifact), an upload, a conversation with messages, a knowledge document
 * (ingested: chunks and vectors), a post with a comment, an API key, and an export. With `owner`, also
 * what only an owner can make: a webhook endpoint, a channel account with a published post (the
 * scheduler's and the sandbox's storage), a custom hostname.
 */
export async function seed(t: TestTenant, token: string, opts: { owner?: boolean } = {}): Promise<Seeded> {
  const project = await call(`${t.host}/v1/projects`, { token, body: { name: "Everything" } });
  expectStatus(project, 201);
  const projectId = project.body.id as string;
  const agent = await call(`${t.host}/v1/agents`, { token, body: { project_id: projectId, name: "Writer", system_prompt: "You write." } });
  expectStatus(agent, 201);
  const run = await startRun({ ...t, owner: { ...t.owner, token } } as TestTenant, { projectId, agentId: agent.body.id }, { text: "Write about spring" });
  expect((await deliverRun(t, run.id)).acked).toBe(true);
  const produced = await call(`${t.host}/v1/runs/${run.id}`, { token });
  const upload = await call(`${t.host}/v1/artifacts?project_id=${projectId}&kind=document&name=brief.txt`, { token, rawBody: "A brief with a secret plan.", headers: { "content-type": "text/plain" } });
  expectStatus(upload, 201);
  const conversation = await call(`${t.host}/v1/conversations`, { token, body: { project_id: projectId, title: "Planning" } });
  expectStatus(conversation, 201);
  for (const content of ["Hello from me", "My phone is 555-0100"]) {
    expectStatus(await call(`${t.host}/v1/conversations/${conversation.body.id}/messages`, { token, body: { content } }), 201);
  }
  const as = { ...t, owner: { ...t.owner, token } };
  const { baseId } = await createBase(as, {}, projectId);
  const doc = await addDocument(as, baseId, "notes.txt", "Spring campaign notes: tulips, sunshine and a launch in April.");
  expect(doc.status).toBe("ready");
  const post = await createPost(t, projectId, "Spring is here.", token);
  expectStatus(await call(`${t.host}/v1/posts/${post.id}/comments`, { token, body: { body: "Looks good to me" } }), 201);
  const key = await call(`${t.host}/v1/api-keys`, { token, body: { name: "seed key", scopes: ["projects:read"] } });
  expectStatus(key, 201);
  // The key is used once, so its rate limiter holds something.
  expectStatus(await call(`${t.host}/v1/projects`, { token: key.body.key }), 200);
  const requested = await call(`${t.host}/v1/exports`, { token, body: { scope: "me" } });
  expectStatus(requested, 202);
  expect((await deliver(QUEUES.compliance, { v: 1, kind: "export", tenant_id: t.id, export_id: requested.body.id })).acked).toBe(true);
  let accountId: string | null = null;
  if (opts.owner) {
    await createEndpoint(t, { url: "https://hooks.example.com/seed", event_types: ["run.succeeded"] });
    const account = await call(`${t.host}/v1/projects/${projectId}/channels`, { token, body: { channel: "linkedin", name: "Acme", credentials: { access_token: "secret-token-123" } } });
    expectStatus(account, 201);
    accountId = account.body.id;
    const scheduled = await createPost(t, projectId, "Published for the seed.", token);
    await act(t, scheduled.id, "submit", token);
    const at = new Date(Date.now() + 3600_000).toISOString();
    expectStatus(await act(t, scheduled.id, "schedule", token, { at }), 200);
    const scheduler = env.PUBLISH_SCHEDULER.get(env.PUBLISH_SCHEDULER.idFromName(t.id));
    await runDurableObjectAlarm(scheduler);
    await atTime(Date.parse(at) + 1000, async () => {
      await runInDurableObject(scheduler, (o) => (o as unknown as { alarm(): Promise<void> }).alarm());
      expect((await deliver(QUEUES.publish, { v: 1, tenant_id: t.id, post_id: scheduled.id, revision: 1 })).acked).toBe(true);
    });
    expectStatus(await call(`${PLATFORM}/v1/platform/domains`, { token: env.PLATFORM_ADMIN_TOKEN, body: { tenant: t.id, hostname: `www.${t.slug}.example.net` } }), 201);
  }
  return {
    projectId,
    conversationId: conversation.body.id,
    runId: run.id,
    artifactIds: [produced.body.artifact_id, upload.body.id],
    documentId: doc.id,
    postId: post.id,
    keyId: key.body.id,
    exportId: requested.body.id,
    accountId,
  };
}

/** Delivers an erasure's messages (one slice each, as the queue would) until it completes; answers how many it took. */
export async function runErasure(id: string, slice = "20000", limit = 100): Promise<number> {
  // Steps that wait for a cache elsewhere to forget (the pool step, a person's rate limiters) find
  // the clock moved past it at each slice: nothing sleeps.
  let clock = Date.now();
  for (let i = 1; i <= limit; i++) {
    clock += 15_000;
    const res = await atTime(clock, () => deliverWith({ COMPLIANCE_SLICE_MS: slice }, { v: 1, kind: "erasure", erasure_id: id }));
    expect(res.acked, "an erasure slice is acknowledged").toBe(true);
    const row = await env.CONTROL_DB.prepare("SELECT status FROM erasures WHERE id = ?").bind(id).first<{ status: string }>();
    if (row?.status === "completed") return i;
  }
  throw new Error(`erasure ${id} did not complete in ${limit} slices`);
}

/** One compliance message delivered with some of the Worker's vars changed. */
export async function deliverWith(vars: Record<string, string>, body: unknown) {
  const { createExecutionContext, createMessageBatch, getQueueResult } = await import("cloudflare:test");
  const worker = (await import("../src/index")).default;
  const id = crypto.randomUUID();
  const batch = createMessageBatch(QUEUES.compliance, [{ id, timestamp: new Date(), attempts: 1, body }]);
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...env, ...vars } as typeof env);
  const result = await getQueueResult(batch, ctx);
  return { acked: result.explicitAcks.includes(id), result };
}

/** An erasure as the operator sees it. */
export async function erasureOf(id: string) {
  const res = await call(`${PLATFORM}/v1/erasures/${id}`, { token: env.PLATFORM_ADMIN_TOKEN });
  expectStatus(res, 200);
  return res.body;
}

/** Verifies a receipt's JWS with the platform's published JWKS and answers its payload. */
export async function verifiedReceipt(jws: string) {
  const jwks = await call(`${PLATFORM}/.well-known/jwks.json`);
  expectStatus(jwks, 200);
  const { payload, protectedHeader } = await compactVerify(jws, createLocalJWKSet(jwks.body));
  expect(protectedHeader).toMatchObject({ alg: "ES256", typ: "tessera-erasure-receipt+jws" });
  return JSON.parse(new TextDecoder().decode(payload));
}

/** The rows of every table of a Durable Object's SQLite (and its key-value entries), by table. */
export async function objectRows(stub: DurableObjectStub): Promise<Record<string, number>> {
  return runInDurableObject(stub, async (_o, state) => {
    const rows: Record<string, number> = {};
    for (const { name } of state.storage.sql.exec<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'`).toArray()) {
      const n = state.storage.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM "${name}"`).one().n;
      if (n) rows[name] = n;
    }
    const kv = (await state.storage.list()).size;
    if (kv) rows["(key-value)"] = kv;
    if ((await state.storage.getAlarm()) !== null) rows["(alarm)"] = 1;
    return rows;
  });
}

/** Every table of a D1 database with how many rows hold `needle` in any column (as text). */
export async function rowsMentioning(d1: D1Database, needles: string[]): Promise<string[]> {
  const found: string[] = [];
  const tables = await d1.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name NOT LIKE '%_fts%' AND name <> 'd1_migrations'`).all<{ name: string }>();
  for (const { name } of tables.results) {
    const columns = (await d1.prepare(`SELECT name FROM pragma_table_info(?)`).bind(name).all<{ name: string }>()).results.map((c) => c.name);
    for (const needle of needles) {
      const where = columns.map((c) => `instr(CAST("${c}" AS TEXT), ?) > 0`).join(" OR ");
      const n = (await d1.prepare(`SELECT count(*) AS n FROM "${name}" WHERE ${where}`).bind(...columns.map(() => needle)).first<{ n: number }>())!.n;
      if (n) found.push(`${name} (${n} naming ${needle})`);
    }
  }
  return found;
}
