import { env, SELF } from "cloudflare:test";
import { strFromU8, unzipSync } from "fflate";
import { describe, expect, it } from "vitest";
import { QUEUES } from "../../src/index";
import { atTime, runCron } from "../clock";
import { seed } from "../compliance";
import { addMember, call, createTenant, expectProblem, expectStatus, tenantD1, type TestTenant } from "../harness";
import { deliver } from "../runs";

const DAY_MS = 86_400_000;

async function sha256(bytes: Uint8Array) {
  return [...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Asks for an export as `token`, has the queue write it, and answers it as GET shows it when ready. */
async function exported(t: TestTenant, token: string, scope: "me" | "tenant") {
  const asked = await call(`${t.host}/v1/exports`, { token, body: { scope } });
  expectStatus(asked, 202);
  expect(asked.body).toMatchObject({ scope, status: "queued", download: null, manifest: null });
  expect((await deliver(QUEUES.compliance, { v: 1, kind: "export", tenant_id: t.id, export_id: asked.body.id })).acked).toBe(true);
  const ready = await call(`${t.host}/v1/exports/${asked.body.id}`, { token });
  expectStatus(ready, 200);
  expect(ready.body.status).toBe("ready");
  return ready.body;
}

/** Downloads an export by its link and answers its files, each checked against the manifest (hash, rows). */
async function unpack(download: { url: string }) {
  const res = await SELF.fetch(download.url);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("application/zip");
  const files = unzipSync(new Uint8Array(await res.arrayBuffer()));
  const manifest = JSON.parse(strFromU8(files["manifest.json"]!));
  expect(manifest.schema_version).toBe(1);
  expect(Object.keys(files).sort()).toEqual([...manifest.files.map((f: { name: string }) => f.name), "manifest.json"].sort());
  for (const f of manifest.files) {
    const bytes = files[f.name]!;
    expect(await sha256(bytes), f.name).toBe(f.sha256);
    expect(bytes.byteLength, f.name).toBe(f.bytes);
    if (f.rows !== undefined) expect(strFromU8(bytes).split("\n").filter(Boolean).length, f.name).toBe(f.rows);
  }
  const rows = (name: string) => (files[name] ? strFromU8(files[name]!).split("\n").filter(Boolean).map((l) => JSON.parse(l)) : []);
  return { files, manifest, rows, text: Object.values(files).map((b) => strFromU8(b)).join("\n") };
}

describe("data exports", () => {
  it("write the whole tenant into one ZIP whose manifest's counts and hashes hold, with every message and stored byte, and no secret", async () => {
    const t = await createTenant();
    const member = await addMember(t, "editor");
    const owners = await seed(t, t.owner.token, { owner: true });
    const members = await seed(t, member.token);
    // Only owners and admins export the whole tenant.
    expectProblem(await call(`${t.host}/v1/exports`, { token: member.token, body: { scope: "tenant" } }), 403, "FORBIDDEN");
    const invalid = await call(`${t.host}/v1/exports`, { token: t.owner.token, body: { scope: "everyone" } });
    expectProblem(invalid, 400, "VALIDATION_FAILED");
    expect(invalid.body.errors[0].field).toBe("scope");

    const done = await exported(t, t.owner.token, "tenant");
    expect(done.progress).toMatchObject({ current: null });
    expect(done.download.url).toMatch(new RegExp(`^${t.host}/v1/exports/${done.id}/archive\\?expires=\\d+&signature=[0-9a-f]{64}$`));
    const { files, manifest, rows, text } = await unpack(done.download);
    expect(manifest).toMatchObject({ export_id: done.id, tenant_id: t.id, scope: "tenant" });
    expect(done.manifest).toEqual(manifest);
    expect(rows("members.ndjson").map((m) => m.email).sort()).toEqual([member.email, t.owner.email].sort());
    expect(rows("tables/runs.ndjson").map((r) => r.id).sort()).toEqual([owners.runId, members.runId].sort());
    expect(rows("tables/audit_log.ndjson").length).toBeGreaterThan(10);
    expect(rows("tables/posts.ndjson").length).toBe(3);
    expect(rows("messages.ndjson").map((m) => [m.conversation_id, m.content])).toEqual(
      expect.arrayContaining([
        [owners.conversationId, "Hello from me"],
        [members.conversationId, "My phone is 555-0100"],
      ]),
    );
    expect(rows("messages.ndjson")).toHaveLength(4);
    // Stored bytes: every artifact version and document original, as uploaded.
    expect(strFromU8(files[`artifacts/${owners.artifactIds[1]}/v1`]!)).toBe("A brief with a secret plan.");
    expect(strFromU8(files[`knowledge/${members.documentId}/notes.txt`]!)).toContain("tulips");
    // Secrets are never in it: channel credentials, webhook signing secrets, review link tokens.
    expect(text).not.toContain("secret-token-123");
    expect(text).not.toContain("whsec_");
    expect(rows("tables/channel_accounts.ndjson")[0]).not.toHaveProperty("credentials");
    expect(manifest.not_exported).toHaveProperty("live_sockets");
  });

  it("give a person only what names them, visible to them alone", async () => {
    const t = await createTenant();
    const member = await addMember(t, "viewer");
    const editor = await addMember(t, "editor");
    const owners = await seed(t, t.owner.token);
    const editors = await seed(t, editor.token);
    const mine = await exported(t, editor.token, "me");
    const { rows } = await unpack(mine.download);
    expect(rows("profile.ndjson")).toEqual([expect.objectContaining({ id: editor.id, email: editor.email })]);
    expect(rows("profile.ndjson")[0]).not.toHaveProperty("password_hash");
    expect(rows("memberships.ndjson")).toEqual([expect.objectContaining({ tenant_id: t.id, role: "editor" })]);
    expect(rows("tables/runs.ndjson").map((r) => r.id)).toEqual([editors.runId]);
    expect(rows("tables/audit_log.ndjson").length).toBeGreaterThan(3);
    expect(rows("tables/audit_log.ndjson").every((e) => e.actor_id === editor.id || editors.keyId === e.actor_id)).toBe(true);
    expect(rows("messages.ndjson").map((m) => m.content)).toEqual(["Hello from me", "My phone is 555-0100"]);
    expect(rows("messages.ndjson").every((m) => m.conversation_id === editors.conversationId)).toBe(true);
    expect(JSON.stringify(rows("tables/projects.ndjson"))).not.toContain(owners.projectId);
    // Nobody else sees it, the owner included; a viewer may export their own.
    expectProblem(await call(`${t.host}/v1/exports/${mine.id}`, { token: t.owner.token }), 404, "NOT_FOUND");
    expectProblem(await call(`${t.host}/v1/exports/${mine.id}`, { token: member.token }), 404, "NOT_FOUND");
    expect((await call(`${t.host}/v1/exports`, { token: t.owner.token })).body.data.map((e: { id: string }) => e.id)).not.toContain(mine.id);
    expectStatus(await call(`${t.host}/v1/exports`, { token: member.token, body: { scope: "me" } }), 202);
  });

  it("hand out links that expire in 10 minutes and cannot be altered, and delete exports after 7 days", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const done = await exported(t, t.owner.token, "me");
    const url = new URL(done.download.url);
    // Altered: another signature, another export id, another tenant's host.
    const forged = new URL(url);
    forged.searchParams.set("signature", "0".repeat(64));
    expectProblem(await call(forged.toString()), 401, "INVALID_TOKEN");
    expectProblem(await call(`${other.host}${url.pathname}${url.search}`), 401, "INVALID_TOKEN");
    const later = Date.parse(done.download.expires_at) + 1000;
    expect(later - Date.now()).toBeLessThanOrEqual(601_000);
    expectProblem(await atTime(later, () => call(url.toString())), 401, "INVALID_TOKEN");
    // Each GET makes a fresh link.
    const again = await atTime(Date.now() + 5000, () => call(`${t.host}/v1/exports/${done.id}`, { token: t.owner.token }));
    expect(again.body.download.url).not.toBe(done.download.url);
    // Past 7 days the cron deletes it, archive first.
    const key = `tenants/${t.id}/exports/${done.id}.zip`;
    expect(await env.ARTIFACTS.head(key)).not.toBeNull();
    await atTime(Date.now() + 7 * DAY_MS + 60_000, () => runCron());
    expect(await env.ARTIFACTS.head(key)).toBeNull();
    expect(await (await tenantD1(t)).prepare("SELECT count(*) AS n FROM exports").first()).toEqual({ n: 0 });
  });
});
