import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { Ajv2020 } from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import { QUEUES } from "../../src/index";
import { atTime, runCron } from "../clock";
import { act, createPost, createProject, getPost } from "../content";
import { call, createTenant, expectProblem, expectStatus, tenantD1, type TestTenant } from "../harness";
import { deliver } from "../runs";

/** Connects the project's LinkedIn account (the local sandbox); answers its id. */
async function connect(t: TestTenant, projectId: string, channel = "linkedin") {
  const res = await call(`${t.host}/v1/projects/${projectId}/channels`, { token: t.owner.token, body: { channel, name: "Acme on LinkedIn", credentials: { access_token: "secret-token-123", page: "acme" } } });
  expectStatus(res, 201);
  return res.body.id as string;
}

/** A post approved under the project's default policy (none) and scheduled an hour from now. */
async function scheduledPost(t: TestTenant, projectId: string, text = "Spring is here.") {
  const post = await createPost(t, projectId, text);
  await act(t, post.id, "submit", t.owner.token);
  const at = new Date(Date.now() + 3600_000).toISOString();
  expectStatus(await act(t, post.id, "schedule", t.owner.token, { at }), 200);
  return { id: post.id, at };
}

const scheduler = (t: TestTenant) => env.PUBLISH_SCHEDULER.get(env.PUBLISH_SCHEDULER.idFromName(t.id));
const sandbox = (accountId: string) => env.PUBLISHER_SANDBOX.get(env.PUBLISHER_SANDBOX.idFromName(accountId));
const publishMessage = (t: TestTenant, postId: string, revision = 1) => ({ v: 1, tenant_id: t.id, post_id: postId, revision });

/** A post's status read from the tenant's database (an hour ahead, the test's access token has expired). */
async function statusOf(t: TestTenant, postId: string) {
  return (await (await tenantD1(t)).prepare("SELECT status FROM posts WHERE id = ?").bind(postId).first<{ status: string }>())!.status;
}

/** Runs `fn` with the clock just past `when`. */
const at = <T>(when: string, fn: () => Promise<T>) => atTime(Date.parse(when) + 1000, fn);

describe("channel accounts", () => {
  it("keep credentials encrypted and never answer them; one account per channel, named in a conflict", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const projectId = await createProject(t);
    const res = await call(`${t.host}/v1/projects/${projectId}/channels`, { token: t.owner.token, body: { channel: "linkedin", name: "Acme", credentials: { access_token: "secret-token-123" } } });
    expectStatus(res, 201);
    expect(JSON.stringify(res.body)).not.toContain("secret-token-123");
    const stored = await (await tenantD1(t)).prepare("SELECT credentials FROM channel_accounts WHERE id = ?").bind(res.body.id).first<{ credentials: string }>();
    expect(stored!.credentials).not.toContain("secret-token");
    expect(atob(stored!.credentials)).not.toContain("secret-token");
    const twice = await call(`${t.host}/v1/projects/${projectId}/channels`, { token: t.owner.token, body: { channel: "linkedin", name: "Again", credentials: {} } });
    expectProblem(twice, 409, "CONFLICT");
    expect(twice.body.errors[0].field).toBe("channel");
    const listed = await call(`${t.host}/v1/projects/${projectId}/channels`, { token: t.owner.token });
    expect(listed.body.data).toHaveLength(1);
    expect(JSON.stringify(listed.body)).not.toContain("secret");
    const audit = await call(`${t.host}/v1/audit-log?action=channel.connected`, { token: t.owner.token });
    expect(JSON.stringify(audit.body)).not.toContain("secret-token");
    expectProblem(await call(`${other.host}/v1/projects/${projectId}/channels`, { token: other.owner.token }), 404, "NOT_FOUND");
  });
});

describe("publishing", () => {
  it("refuses to schedule a channel the project has not connected, naming it, and writes nothing", async () => {
    const t = await createTenant();
    const projectId = await createProject(t);
    const post = await createPost(t, projectId);
    await act(t, post.id, "submit", t.owner.token);
    const res = await act(t, post.id, "schedule", t.owner.token, { at: new Date(Date.now() + 3600_000).toISOString() });
    expectProblem(res, 400, "VALIDATION_FAILED");
    expect(res.body.errors[0].field).toBe("variants.0.channel");
    expect(await getPost(t, post.id)).toMatchObject({ status: "approved", scheduled_at: null });
  });

  it("publishes exactly the scheduled revision at its minute, once however often the queue delivers", async () => {
    const t = await createTenant();
    const projectId = await createProject(t);
    const accountId = await connect(t, projectId);
    const post = await scheduledPost(t, projectId);
    // The tenant's scheduler is woken for the post's minute.
    expect(await runInDurableObject(scheduler(t), (_o, state) => state.storage.getAlarm())).toBe(Date.parse(post.at));
    // Before its minute nothing is due; at it, the alarm claims the post for publishing.
    expect(await runDurableObjectAlarm(scheduler(t))).toBe(true);
    expect((await getPost(t, post.id)).status).toBe("scheduled");
    await at(post.at, async () => {
      await runInDurableObject(scheduler(t), (o) => (o as unknown as { alarm(): Promise<void> }).alarm());
      expect(await statusOf(t, post.id)).toBe("publishing");
      // The queue delivers the message twice (at least once): the sandbox is posted to once.
      const [first, second] = await Promise.all([deliver(QUEUES.publish, publishMessage(t, post.id)), deliver(QUEUES.publish, publishMessage(t, post.id))]);
      expect([first.acked, second.acked]).toEqual([true, true]);
    });
    const done = await getPost(t, post.id);
    expect(done).toMatchObject({ status: "published", publish_error: null });
    const publications = await call(`${t.host}/v1/posts/${post.id}/publications`, { token: t.owner.token });
    expect(publications.body.data).toMatchObject([{ revision: 1, channel: "linkedin", url: expect.stringMatching(/^https:\/\/sandbox\.tessera\.local\/linkedin\//) }]);
    const posted = await sandbox(accountId).published();
    expect(posted).toMatchObject([{ key: `${post.id}:1:linkedin`, text: "Spring is here." }]);
    expect(posted[0]!.id).toBe(publications.body.data[0].external_id);
    // A published post's content is fixed.
    expectProblem(await call(`${t.host}/v1/posts/${post.id}`, { method: "PATCH", token: t.owner.token, body: { title: "Too late" } }), 409, "INVALID_STATE");
    const events = await (await tenantD1(t)).prepare("SELECT type FROM outbox WHERE subject_id = ? ORDER BY id").bind(post.id).all<{ type: string }>();
    expect(events.results.map((e) => e.type).filter((type) => type === "post.published")).toHaveLength(1);
  });

  it("retries a channel's transient failure and fails a refusal for good, saying which channel and why", async () => {
    const t = await createTenant();
    const projectId = await createProject(t);
    const accountId = await connect(t, projectId);
    await sandbox(accountId).script([{ status: 500, error: "upstream hiccup" }]);
    const flaky = await scheduledPost(t, projectId, "Flaky");
    await at(flaky.at, async () => {
      await runInDurableObject(scheduler(t), (o) => (o as unknown as { alarm(): Promise<void> }).alarm());
      expect((await deliver(QUEUES.publish, publishMessage(t, flaky.id))).retried).toBe(true);
      expect(await statusOf(t, flaky.id)).toBe("publishing");
      expect((await deliver(QUEUES.publish, publishMessage(t, flaky.id), 2)).acked).toBe(true);
    });
    expect((await getPost(t, flaky.id)).status).toBe("published");
    await sandbox(accountId).script([{ status: 400, error: "text too long" }]);
    const refused = await scheduledPost(t, projectId, "Refused");
    await at(refused.at, async () => {
      await runInDurableObject(scheduler(t), (o) => (o as unknown as { alarm(): Promise<void> }).alarm());
      expect((await deliver(QUEUES.publish, publishMessage(t, refused.id))).acked).toBe(true);
    });
    expect(await getPost(t, refused.id)).toMatchObject({ status: "failed", publish_error: "publish_refused: linkedin: 400 text too long" });
    // A failed post is scheduled again as it was, or edited back into review.
    const again = await act(t, refused.id, "schedule", t.owner.token, { at: new Date(Date.now() + 7200_000).toISOString() });
    expect(again.body).toMatchObject({ status: "scheduled", scheduled_revision: 1, publish_error: null });
    expect((await sandbox(accountId).published()).map((p) => p.text)).toEqual(["Flaky"]);
    // Both outcomes' events satisfy the catalogue's schemas.
    const types = await call(`${t.host}/v1/webhooks/event-types`, { token: t.owner.token });
    const schemas = new Map<string, Record<string, unknown>>(types.body.data.map((e: { type: string; schema: Record<string, unknown> }) => [e.type, e.schema]));
    const rows = await (await tenantD1(t)).prepare("SELECT type, data, created_at FROM outbox WHERE type IN ('post.published', 'post.failed')").all<{ type: string; data: string; created_at: string }>();
    expect(rows.results.map((r) => r.type).sort()).toEqual(["post.failed", "post.published"]);
    const ajv = new Ajv2020({ strict: false });
    for (const r of rows.results) expect(ajv.validate(schemas.get(r.type)!, { type: r.type, timestamp: r.created_at, data: JSON.parse(r.data) }), `${r.type}: ${ajv.errorsText()}`).toBe(true);
  });

  it("publishes nothing for a post edited after it was queued: the edit took it off the schedule", async () => {
    const t = await createTenant();
    const projectId = await createProject(t);
    const accountId = await connect(t, projectId);
    const post = await scheduledPost(t, projectId);
    await call(`${t.host}/v1/posts/${post.id}`, { method: "PATCH", token: t.owner.token, body: { title: "Changed" } });
    await at(post.at, async () => {
      await runInDurableObject(scheduler(t), (o) => (o as unknown as { alarm(): Promise<void> }).alarm());
      expect((await deliver(QUEUES.publish, publishMessage(t, post.id))).acked).toBe(true);
    });
    expect((await getPost(t, post.id)).status).not.toBe("published");
    expect(await sandbox(accountId).published()).toEqual([]);
  });
});

describe("campaign analytics", () => {
  it("collect published posts' counts every hour and sum them per channel, per post, over time and in a funnel", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const projectId = await createProject(t);
    const accountId = await connect(t, projectId);
    const campaign = await call(`${t.host}/v1/campaigns`, { token: t.owner.token, body: { project_id: projectId, name: "Measured" } });
    const created = await call(`${t.host}/v1/posts`, { token: t.owner.token, body: { campaign_id: campaign.body.id, title: "Counted", variants: [{ channel: "linkedin", text: "Count me" }] } });
    await act(t, created.body.id, "submit", t.owner.token);
    const due = new Date(Date.now() + 3600_000).toISOString();
    await act(t, created.body.id, "schedule", t.owner.token, { at: due });
    await at(due, async () => {
      await runInDurableObject(scheduler(t), (o) => (o as unknown as { alarm(): Promise<void> }).alarm());
      await deliver(QUEUES.publish, publishMessage(t, created.body.id));
    });
    const externalId = (await sandbox(accountId).published())[0]!.id;
    const later = (hours: number) => new Date(Date.parse(due) + hours * 3600_000).toISOString();
    const early = await at(later(3), async () => {
      await runCron();
      await runCron(); // once an hour: a second pass in the same hour adds nothing
      return sandbox(accountId).metrics(externalId);
    });
    const late = await at(later(27), async () => {
      await runCron();
      return sandbox(accountId).metrics(externalId);
    });
    expect(late!.impressions).toBeGreaterThan(early!.impressions);
    const url = `${t.host}/v1/campaigns/${campaign.body.id}/analytics?from=${encodeURIComponent(due)}&to=${encodeURIComponent(later(48))}`;
    const res = await call(url, { token: t.owner.token });
    expectStatus(res, 200);
    const { impressions, clicks, reactions, shares, conversions } = late!;
    expect(res.body.totals).toEqual({ impressions, clicks, reactions, shares, conversions });
    expect(res.body.by_channel).toEqual([{ channel: "linkedin", impressions, clicks, reactions, shares, conversions }]);
    expect(res.body.by_post).toEqual([{ post_id: created.body.id, title: "Counted", impressions, clicks, reactions, shares, conversions }]);
    expect(res.body.series.map((s: { impressions: number }) => s.impressions)).toEqual([early!.impressions, impressions]);
    expect(res.body.funnel).toEqual({ impressions, clicks, conversions, click_rate: clicks / impressions });
    const hourly = await call(`${url}&granularity=hour`, { token: t.owner.token });
    expect(hourly.body.series).toHaveLength(2);
    const rows = await (await tenantD1(t)).prepare("SELECT count(*) AS n FROM post_metrics WHERE post_id = ?").bind(created.body.id).first<{ n: number }>();
    expect(rows!.n).toBe(2);
    const week = await call(`${url}&granularity=week`, { token: t.owner.token });
    expectProblem(week, 400, "VALIDATION_FAILED");
    expect(week.body.errors[0].field).toBe("granularity");
    const backwards = await call(`${t.host}/v1/campaigns/${campaign.body.id}/analytics?from=${encodeURIComponent(later(5))}&to=${encodeURIComponent(due)}`, { token: t.owner.token });
    expect(backwards.body.errors[0].field).toBe("to");
    expectProblem(await call(`${other.host}/v1/campaigns/${campaign.body.id}/analytics`, { token: other.owner.token }), 404, "NOT_FOUND");
  });
});
