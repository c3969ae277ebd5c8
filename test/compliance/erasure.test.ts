import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CONTROL_TABLES, RESIDUAL_COPY_DAYS } from "../../src/compliance/plan";
import { QUEUES } from "../../src/index";
import { erasureOf, objectRows, rowsMentioning, runErasure, seed, verifiedReceipt } from "../compliance";
import { addMember, adminToken, call, createTenant, expectProblem, expectStatus, PLATFORM, PASSWORD, tenantD1 } from "../harness";
import { deliver, deliverRun } from "../runs";

const admin = (path: string, body?: unknown) => call(`${PLATFORM}${path}`, { token: adminToken(), ...(body !== undefined && { body }) });
const DAY_MS = 86_400_000;

/** Every table of a D1 database that holds a row (SQLite's, D1's and the full-text index's own bookkeeping aside). */
async function tablesWithRows(d1: D1Database): Promise<string[]> {
  const tables = await d1.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name <> 'd1_migrations'`).all<{ name: string }>();
  const held: string[] = [];
  for (const { name } of tables.results) {
    // The full-text index keeps its structure rows (config, an empty segment) when empty: its docsize rows are one per indexed chunk.
    if (/_fts_(data|idx|config)$/.test(name)) continue;
    const n = (await d1.prepare(`SELECT count(*) AS n FROM "${name}"`).first<{ n: number }>())!.n;
    if (n) held.push(`${name}: ${n}`);
  }
  return held;
}

const room = (tenantId: string, conversationId: string) => env.CONVERSATION_ROOM.get(env.CONVERSATION_ROOM.idFromName(`${tenantId}:${conversationId}`));
const limiter = (name: string) => env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(name));

describe("erasing a tenant", () => {
  it("empties every store it wrote, verifies its database empty, returns it to the pool, and signs a receipt", async () => {
    const t = await createTenant();
    const d1 = await tenantD1(t);
    const binding = (await env.CONTROL_DB.prepare("SELECT db_binding FROM tenants WHERE id = ?").bind(t.id).first<{ db_binding: string }>())!.db_binding;
    const member = await addMember(t, "editor");
    const seeded = await seed(t, t.owner.token, { owner: true });
    await seed(t, member.token);
    // Everything is there before.
    expect(await tablesWithRows(d1)).not.toEqual([]);
    expect((await env.ARTIFACTS.list({ prefix: `tenants/${t.id}/` })).objects.length).toBeGreaterThanOrEqual(6);
    expect(await objectRows(room(t.id, seeded.conversationId))).toMatchObject({ messages: 2 });
    expect(Object.keys(await objectRows(env.VECTOR_INDEX.get(env.VECTOR_INDEX.idFromName(t.id))))).toContain("vectors");
    expect(Object.keys(await objectRows(limiter(`tenant:${t.id}`)))).not.toEqual([]);
    expect(await objectRows(env.PUBLISHER_SANDBOX.get(env.PUBLISHER_SANDBOX.idFromName(seeded.accountId!)))).toMatchObject({ posts: 1 });
    expect(await env.TENANT_CACHE.get(`host:www.${t.slug}.example.net`)).not.toBeNull();

    // Only a suspended tenant is erased.
    expectProblem(await admin(`/v1/platform/tenants/${t.id}/erase`, {}), 409, "CONFLICT");
    expectStatus(await admin(`/v1/platform/tenants/${t.id}/suspend`, {}), 200);
    const asked = await admin(`/v1/platform/tenants/${t.id}/erase`, {});
    expectStatus(asked, 202);
    expect(asked.body).toMatchObject({ subject: { type: "tenant", id: t.id }, status: "queued", receipt_jws: null });
    // From now its hosts answer as unknown, its status no longer changes, and asking again answers the same job.
    expectProblem(await call(`${t.host}/v1/projects`, { token: t.owner.token }), 404, "TENANT_NOT_FOUND");
    expectProblem(await admin(`/v1/platform/tenants/${t.id}/reactivate`, {}), 409, "CONFLICT");
    expect((await admin(`/v1/platform/tenants/${t.id}/erase`, {})).body.id).toBe(asked.body.id);

    await runErasure(asked.body.id);

    // Every store, inspected directly.
    expect(await tablesWithRows(d1)).toEqual([]);
    for (const [table, plan] of Object.entries(CONTROL_TABLES)) {
      const columns = (await env.CONTROL_DB.prepare("SELECT name FROM pragma_table_info(?)").bind(table).all<{ name: string }>()).results.map((c) => c.name);
      if (!columns.includes("tenant_id") || plan.tenant !== "erase") continue;
      expect((await env.CONTROL_DB.prepare(`SELECT count(*) AS n FROM "${table}" WHERE tenant_id = ?`).bind(t.id).first<{ n: number }>())!.n, table).toBe(0);
    }
    expect((await env.CONTROL_DB.prepare("SELECT count(*) AS n FROM refresh_tokens WHERE family_id NOT IN (SELECT id FROM refresh_token_families)").first<{ n: number }>())!.n).toBe(0);
    expect((await env.ARTIFACTS.list({ prefix: `tenants/${t.id}/` })).objects).toEqual([]);
    expect(await objectRows(room(t.id, seeded.conversationId))).toEqual({});
    expect(await objectRows(env.VECTOR_INDEX.get(env.VECTOR_INDEX.idFromName(t.id)))).toEqual({});
    for (const name of [`tenant:${t.id}`, `member:${t.id}:${t.owner.id}`, `member:${t.id}:${member.id}`, `key:${seeded.keyId}`]) expect(await objectRows(limiter(name)), name).toEqual({});
    expect(await objectRows(env.PUBLISH_SCHEDULER.get(env.PUBLISH_SCHEDULER.idFromName(t.id)))).toEqual({});
    expect(await objectRows(env.PUBLISHER_SANDBOX.get(env.PUBLISHER_SANDBOX.idFromName(seeded.accountId!)))).toEqual({});
    expect(await env.TENANT_CACHE.get(`host:${t.slug}.localhost`)).toBeNull();
    expect(await env.TENANT_CACHE.get(`host:www.${t.slug}.example.net`)).toBeNull();
    // The tenant's row is a tombstone; its database is free for the next signup.
    const row = await env.CONTROL_DB.prepare("SELECT status, slug, name FROM tenants WHERE id = ?").bind(t.id).first();
    expect(row).toEqual({ status: "erased", slug: `erased-${t.id}`, name: "" });
    expect(await env.CONTROL_DB.prepare("SELECT tenant_id FROM tenant_databases WHERE binding = ?").bind(binding).first()).toEqual({ tenant_id: null });
    // People stay (they may belong elsewhere); their membership here is gone.
    expect(await env.CONTROL_DB.prepare("SELECT count(*) AS n FROM users WHERE id = ?").bind(member.id).first()).toEqual({ n: 1 });

    // A queue message that arrives late for it is dropped, and writes nothing.
    expect((await deliverRun(t, seeded.runId)).acked).toBe(true);
    expect((await deliver(QUEUES.compliance, { v: 1, kind: "export", tenant_id: t.id, export_id: seeded.exportId })).acked).toBe(true);
    expect(await tablesWithRows(d1)).toEqual([]);

    // The receipt: signed with the platform's key, one entry per store, the residual copies' expiry.
    const done = await erasureOf(asked.body.id);
    expect(done.status).toBe("completed");
    const receipt = await verifiedReceipt(done.receipt_jws);
    expect(receipt).toEqual(done.receipt);
    expect(receipt).toMatchObject({ erasure_id: asked.body.id, subject: { type: "tenant", id: t.id }, requested_by: "platform" });
    expect(Date.parse(receipt.residual_copies_expire_at) - Date.parse(receipt.completed_at)).toBe(RESIDUAL_COPY_DAYS * DAY_MS);
    const store = (name: string, table?: string) => receipt.stores.find((s: { store: string; table?: string }) => s.store === name && s.table === table);
    expect(store("tenant_db", "runs").deleted).toBe(2);
    expect(store("tenant_db", "conversations").deleted).toBe(2);
    expect(store("control_db", "memberships").deleted).toBe(2);
    expect(store("control_db", "hostnames").deleted).toBe(1);
    expect(store("r2").deleted).toBeGreaterThanOrEqual(6);
    expect(store("conversation_rooms").deleted).toBe(2);
    expect(store("vectors").deleted).toBeGreaterThan(0);
    expect(store("kv").deleted).toBeGreaterThanOrEqual(1);
  });

  it("resumes a job killed midway: work done but not recorded is done again without error, and one receipt is signed", async () => {
    const t = await createTenant();
    const d1 = await tenantD1(t);
    await seed(t, t.owner.token);
    expectStatus(await admin(`/v1/platform/tenants/${t.id}/suspend`, {}), 200);
    const asked = await admin(`/v1/platform/tenants/${t.id}/erase`, {});
    // One step per message, as if the Worker died after each; after a few, the progress of the
    // last two steps is lost (the job died after their work, before recording it).
    const { deliverWith } = await import("../compliance");
    const body = { v: 1, kind: "erasure", erasure_id: asked.body.id };
    for (let i = 0; i < 3; i++) expect((await deliverWith({ COMPLIANCE_SLICE_MS: "0" }, body)).acked).toBe(true);
    const partway = await env.CONTROL_DB.prepare("SELECT progress FROM erasures WHERE id = ?").bind(asked.body.id).first<{ progress: string }>();
    const steps = JSON.parse(partway!.progress) as Record<string, unknown>;
    expect(Object.keys(steps)).toEqual(["rooms", "rate_limiters", "durable_objects"]);
    delete steps.rate_limiters;
    delete steps.durable_objects;
    await env.CONTROL_DB.prepare("UPDATE erasures SET progress = ? WHERE id = ?").bind(JSON.stringify(steps), asked.body.id).run();
    const slices = await runErasure(asked.body.id, "0");
    expect(slices).toBeGreaterThan(5);
    const first = await erasureOf(asked.body.id);
    expect(first.steps.every((s: { done: boolean }) => s.done)).toBe(true);
    // A duplicate message after it finished changes nothing: the same receipt.
    expect((await deliverWith({}, body)).acked).toBe(true);
    expect((await erasureOf(asked.body.id)).receipt_jws).toBe(first.receipt_jws);
    expect(await tablesWithRows(d1)).toEqual([]);
  });
});

describe("erasing a person", () => {
  it("erases them from two tenants and the control plane, pseudonymising what stays, by their own request", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const email = `person-${crypto.randomUUID().slice(0, 8)}@example.test`;
    const inA = await addMember(a, "editor", email);
    const inB = await addMember(b, "admin", email);
    expect(inB.id).toBe(inA.id);
    const person = inA.id;
    // Tenant b erases a person's uploads with them; a keeps them as its content.
    expectStatus(await call(`${b.host}/v1/settings/compliance`, { method: "PATCH", token: b.owner.token, body: { uploads_on_erasure: "erase" } }), 200);
    const seededA = await seed(a, inA.token);
    const seededB = await seed(b, inB.token);
    // Others' data beside theirs, to be left alone.
    const ownersA = await seed(a, a.owner.token);
    expectStatus(await call(`${a.host}/v1/conversations/${seededA.conversationId}/messages`, { token: a.owner.token, body: { content: "The owner replies" } }), 201);
    const keys = [seededA.keyId, seededB.keyId];
    // They left b before (the owner removed them): their rows there are erased all the same.
    expectStatus(await call(`${b.host}/v1/members/${person}`, { method: "DELETE", token: b.owner.token }), 204);
    const before = await rowsMentioning(await tenantD1(a), [person]);
    expect(before.length).toBeGreaterThan(5);

    // Their own request needs their access token and their email as confirmation.
    const key = await call(`${a.host}/v1/api-keys`, { token: inA.token, body: { name: "k", scopes: ["projects:read"] } });
    expectProblem(await call(`${a.host}/v1/me?confirm=${email}`, { method: "DELETE", token: key.body.key }), 403, "FORBIDDEN");
    const unconfirmed = await call(`${a.host}/v1/me?confirm=someone@else.test`, { method: "DELETE", token: inA.token });
    expectProblem(unconfirmed, 400, "VALIDATION_FAILED");
    expect(unconfirmed.body.errors[0].field).toBe("confirm");
    const asked = await call(`${a.host}/v1/me?confirm=${email}`, { method: "DELETE", token: inA.token });
    expectStatus(asked, 202);
    keys.push(key.body.id);
    await runErasure(asked.body.erasure.id);
    // Their rate limiters are empty (looked at first: a request with their old token, within the 10 s a read may trust this isolate's membership, counts again).
    for (const t of [a, b]) expect(await objectRows(limiter(`member:${t.id}:${person}`))).toEqual({});
    expect(await objectRows(limiter(`key:${seededA.keyId}`))).toEqual({});

    // The control plane: account, sessions, keys, memberships, security events — gone.
    expect(await rowsMentioning(env.CONTROL_DB, [person, email, ...keys].filter(Boolean)).then((found) => found.filter((f) => !f.startsWith("erasures ")))).toEqual([]);
    expect(await call(`${a.host}/v1/me`, { token: inA.token }).then((r) => r.status)).toBe(401);
    expect((await call(`${a.host}/v1/auth/login`, { body: { email, password: PASSWORD } })).status).toBe(401);
    // Both tenants: no row names them, by id, key or email, in any column.
    for (const t of [a, b]) expect(await rowsMentioning(await tenantD1(t), [person, email, ...keys])).toEqual([]);
    // What stays is pseudonymised: their run, post and comment are the tenant's, by the tombstone.
    const tombstone = (await erasureOf(asked.body.erasure.id)).receipt.tombstones.user as string;
    expect(tombstone).toMatch(/^usr_0000000000/);
    const dA = await tenantD1(a);
    expect(await dA.prepare("SELECT created_by FROM runs WHERE id = ?").bind(seededA.runId).first()).toEqual({ created_by: tombstone });
    expect(await dA.prepare("SELECT author_id FROM post_comments WHERE post_id = ?").bind(seededA.postId).first()).toEqual({ author_id: tombstone });
    expect((await dA.prepare("SELECT count(*) AS n FROM audit_log WHERE actor_id = ?").bind(tombstone).first<{ n: number }>())!.n).toBeGreaterThan(3);
    // Each tenant's log says a member was erased, once, by the tombstone; so does its webhook event.
    for (const t of [a, b]) {
      const erased = await call(`${t.host}/v1/audit-log?action=member.erased`, { token: t.owner.token });
      expect(erased.body.data).toMatchObject([{ actor: { type: "user", id: tombstone }, resource: { type: "member", id: tombstone }, details: { requested_by: "subject" } }]);
    }
    // Their messages: text replaced, author the tombstone; the owner's reply untouched.
    const messages = await call(`${a.host}/v1/conversations/${seededA.conversationId}/messages`, { token: a.owner.token });
    expect(messages.body.data.map((m: { content: string; author_id: string | null }) => [m.content, m.author_id])).toEqual([
      ["[erased]", tombstone],
      ["[erased]", tombstone],
      ["The owner replies", a.owner.id],
    ]);
    // Uploads: a keeps theirs as its content, b erased them with their bytes; their exports are gone in both.
    expectStatus(await call(`${a.host}/v1/artifacts/${seededA.artifactIds[1]}`, { token: a.owner.token }), 200);
    expectProblem(await call(`${b.host}/v1/artifacts/${seededB.artifactIds[1]}`, { token: b.owner.token }), 404, "NOT_FOUND");
    const objectsB = (await env.ARTIFACTS.list({ prefix: `tenants/${b.id}/` })).objects.map((o) => o.key);
    expect(objectsB.filter((k) => k.includes(seededB.artifactIds[1]!) || k.includes(seededB.documentId) || k.includes("/exports/"))).toEqual([]);
    expect((await env.ARTIFACTS.list({ prefix: `tenants/${a.id}/exports/` })).objects.map((o) => o.key)).toEqual([`tenants/${a.id}/exports/${ownersA.exportId}.zip`]);
    // Others' data is whole.
    expectStatus(await call(`${a.host}/v1/runs/${ownersA.runId}`, { token: a.owner.token }), 200);

    // The subject reads the signed receipt with the token they were given (their account is gone).
    const receiptUrl = new URL(asked.body.receipt_url);
    const byToken = await call(`${PLATFORM}${receiptUrl.pathname}${receiptUrl.search}`);
    expectStatus(byToken, 200);
    const receipt = await verifiedReceipt(byToken.body.receipt_jws);
    expect(receipt).toMatchObject({ subject: { type: "user", id: person }, requested_by: "subject", uploads: { [a.id]: "keep", [b.id]: "erase" } });
    const inTenant = (tenantId: string, table: string) => receipt.stores.find((s: { tenant_id?: string; table?: string }) => s.tenant_id === tenantId && s.table === table);
    expect(inTenant(a.id, "runs")).toMatchObject({ pseudonymised: 1 });
    expect(inTenant(b.id, "artifacts")).toBeDefined();
    expect(receipt.stores.find((s: { store: string; tenant_id?: string }) => s.store === "conversation_rooms" && s.tenant_id === a.id).pseudonymised).toBe(2);
    expectProblem(await call(`${PLATFORM}${receiptUrl.pathname}?token=ert_wrong`), 404, "NOT_FOUND");
  });

  it("refuses the only owner of a tenant, naming it, and an unknown person", async () => {
    const t = await createTenant();
    const refused = await admin("/v1/erasures", { subject: "user", user_id: t.owner.id });
    expectProblem(refused, 409, "CONFLICT");
    expect(refused.body.errors[0].field).toBe("user_id");
    expect(refused.body.detail).toContain(t.slug);
    expectProblem(await admin("/v1/erasures", { subject: "user", user_id: "usr_nobody" }), 404, "NOT_FOUND");
    expectProblem(await call(`${PLATFORM}/v1/erasures`, { token: t.owner.token, body: { subject: "user", user_id: t.owner.id } }), 401, "INVALID_TOKEN");
    expectProblem(await call(`${t.host}/v1/erasures/era_x`, { token: t.owner.token }), 404, "NOT_FOUND");
  });
});
