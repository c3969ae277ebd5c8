
import { Ajv2020 } from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import { atTime, runCron } from "../clock";
import { act, createPost, createProject, getPost, setPolicy } from "../content";
import { addMember, call, createTenant, expectProblem, expectStatus, tenantD1 } from "../harness";

describe("campaigns", () => {
  it("move through their status machine, and an action their status does not allow is a 409 naming it", async () => {
    const t = await createTenant();
    const projectId = await createProject(t);
    const created = await call(`${t.host}/v1/campaigns`, { token: t.owner.token, body: { project_id: projectId, name: "Spring", channels: ["linkedin", "linkedin", "instagram"], starts_on: "2027-03-01", ends_on: "2027-03-31", tags: ["q1"] } });
    expectStatus(created, 201);
    expect(created.body).toMatchObject({ status: "draft", channels: ["linkedin", "instagram"], owner_id: t.owner.id });
    const id = created.body.id as string;
    const move = (action: string) => call(`${t.host}/v1/campaigns/${id}/${action}`, { method: "POST", token: t.owner.token });
    const paused = await move("pause");
    expectProblem(paused, 409, "INVALID_STATE");
    expect(paused.body.detail).toContain("is draft");
    for (const [action, status] of [["activate", "active"], ["pause", "paused"], ["activate", "active"], ["complete", "completed"], ["archive", "archived"]]) {
      const res = await move(action!);
      expectStatus(res, 200);
      expect(res.body.status).toBe(status);
    }
    expectProblem(await move("activate"), 409, "INVALID_STATE");
    const events = await (await tenantD1(t)).prepare("SELECT type FROM outbox WHERE subject_id = ? ORDER BY id").bind(id).all<{ type: string }>();
    expect(events.results.map((e) => e.type)).toEqual(["campaign.created", "campaign.activated", "campaign.paused", "campaign.activated", "campaign.completed", "campaign.archived"]);
  });

  it("refuse an end before the start naming ends_on, and are another tenant's 404", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const projectId = await createProject(t);
    const bad = await call(`${t.host}/v1/campaigns`, { token: t.owner.token, body: { project_id: projectId, name: "Backwards", starts_on: "2027-03-31", ends_on: "2027-03-01" } });
    expectProblem(bad, 400, "VALIDATION_FAILED");
    expect(bad.body.errors[0].field).toBe("ends_on");
    const ok = await call(`${t.host}/v1/campaigns`, { token: t.owner.token, body: { project_id: projectId, name: "Fine" } });
    expectProblem(await call(`${other.host}/v1/campaigns/${ok.body.id}`, { token: other.owner.token }), 404, "NOT_FOUND");
    expectProblem(await call(`${other.host}/v1/campaigns/${ok.body.id}/activate`, { method: "POST", token: other.owner.token }), 404, "NOT_FOUND");
    const patched = await call(`${t.host}/v1/campaigns/${ok.body.id}`, { method: "PATCH", token: t.owner.token, body: { ends_on: "2027-01-01", starts_on: "2027-02-01" } });
    expect(patched.body.errors[0].field).toBe("ends_on");
  });
});

describe("posts", () => {
  it("keep every edit as an immutable revision with its author and content hash", async () => {
    const t = await createTenant();
    const projectId = await createProject(t);
    const campaign = await call(`${t.host}/v1/campaigns`, { token: t.owner.token, body: { project_id: projectId, name: "Spring" } });
    const created = await call(`${t.host}/v1/posts`, { token: t.owner.token, body: { campaign_id: campaign.body.id, title: "Launch", variants: [{ channel: "linkedin", text: "Spring is here." }, { channel: "x", text: "Spring!" }] } });
    expectStatus(created, 201);
    expect(created.body).toMatchObject({ project_id: projectId, campaign_id: campaign.body.id, status: "draft", revision: 1, current: { revision: 1, author_id: t.owner.id } });
    const editor = await addMember(t, "editor");
    const edited = await call(`${t.host}/v1/posts/${created.body.id}`, { method: "PATCH", token: editor.token, body: { variants: [{ channel: "linkedin", text: "Spring is finally here." }] } });
    expectStatus(edited, 200);
    expect(edited.body).toMatchObject({ revision: 2, title: "Launch", current: { revision: 2, author_id: editor.id, variants: [{ channel: "linkedin", text: "Spring is finally here." }] } });
    expect(edited.body.current.content_hash).not.toBe(created.body.current.content_hash);
    const revisions = await call(`${t.host}/v1/posts/${created.body.id}/revisions`, { token: t.owner.token });
    expect(revisions.body.data.map((r: { revision: number; variants: unknown[] }) => [r.revision, r.variants.length])).toEqual([
      [1, 2],
      [2, 1],
    ]);
    // An edit made on an older revision is refused when the client says which revision it edited.
    const stale = await call(`${t.host}/v1/posts/${created.body.id}`, { method: "PATCH", token: t.owner.token, body: { title: "Old", base_revision: 1 } });
    expectProblem(stale, 409, "STALE_REVISION");
    expect(stale.body.detail).toContain("revision 2");
  });

  it("refuse two variants for one channel, media the project lacks, and a campaign of another project, naming the field", async () => {
    const t = await createTenant();
    const projectId = await createProject(t);
    const otherProject = await createProject(t, "Other");
    const twice = await call(`${t.host}/v1/posts`, { token: t.owner.token, body: { project_id: projectId, title: "x", variants: [{ channel: "x", text: "a" }, { channel: "x", text: "b" }] } });
    expect(twice.body.errors[0].field).toBe("variants.1.channel");
    const media = await call(`${t.host}/v1/posts`, { token: t.owner.token, body: { project_id: projectId, title: "x", variants: [{ channel: "x", text: "a", media: [{ artifact_id: "art_absent", version: 1 }] }] } });
    expectProblem(media, 404, "NOT_FOUND");
    expect(media.body.errors[0].field).toBe("variants.0.media.0");
    const campaign = await call(`${t.host}/v1/campaigns`, { token: t.owner.token, body: { project_id: projectId, name: "Spring" } });
    const mismatch = await call(`${t.host}/v1/posts`, { token: t.owner.token, body: { project_id: otherProject, campaign_id: campaign.body.id, title: "x", variants: [{ channel: "x", text: "a" }] } });
    expectProblem(mismatch, 400, "VALIDATION_FAILED");
    expect(mismatch.body.errors[0].field).toBe("project_id");
    const rows = await (await tenantD1(t)).prepare("SELECT count(*) AS n FROM posts").first<{ n: number }>();
    expect(rows!.n).toBe(0);
  });
});

describe("approvals", () => {
  it("are tied to a revision: a stale one is a 409 naming the current, twice is a no-op, and an edit after approval reopens review", async () => {
    const t = await createTenant();
    const projectId = await createProject(t);
    await setPolicy(t, projectId, { mode: "required" });
    const reviewer = await addMember(t, "editor");
    const post = await createPost(t, projectId);
    expectProblem(await act(t, post.id, "approve", reviewer.token, { revision: 1 }), 409, "INVALID_STATE");
    expect((await act(t, post.id, "submit", t.owner.token)).body).toMatchObject({ status: "in_review", review_levels: [{ name: "Approval", reviewers: null, required: 1 }] });
    const wrong = await act(t, post.id, "approve", reviewer.token, { revision: 7 });
    expectProblem(wrong, 409, "STALE_REVISION");
    expect(wrong.body.detail).toContain("revision 1");
    const approved = await act(t, post.id, "approve", reviewer.token, { revision: 1 });
    expectStatus(approved, 200);
    expect(approved.body).toMatchObject({ status: "approved", approved_revision: 1 });
    expect((await act(t, post.id, "approve", reviewer.token, { revision: 1 })).body).toMatchObject({ status: "approved", approved_revision: 1 });
    const edited = await call(`${t.host}/v1/posts/${post.id}`, { method: "PATCH", token: t.owner.token, body: { title: "Launch, again" } });
    expect(edited.body).toMatchObject({ status: "in_review", revision: 2, approved_revision: null });
    expectProblem(await act(t, post.id, "approve", reviewer.token, { revision: 1 }), 409, "STALE_REVISION");
    expect((await act(t, post.id, "approve", reviewer.token, { revision: 2 })).body).toMatchObject({ status: "approved", approved_revision: 2 });
    const reviews = await call(`${t.host}/v1/posts/${post.id}/reviews`, { token: t.owner.token });
    expect(reviews.body.data.map((r: { revision: number; decision: string }) => [r.revision, r.decision])).toEqual([
      [1, "approved"],
      [2, "approved"],
    ]);
    const events = await (await tenantD1(t)).prepare("SELECT type FROM outbox WHERE subject_id = ? ORDER BY id").bind(post.id).all<{ type: string }>();
    expect(events.results.map((e) => e.type)).toEqual(["post.created", "post.submitted", "post.approved", "post.revised", "post.approved"]);
  });

  it("pass multi-level policies in order, only by each level's reviewers, with each level's count", async () => {
    const t = await createTenant();
    const projectId = await createProject(t);
    const lead = await addMember(t, "editor");
    const clientA = await addMember(t, "editor");
    const clientB = await addMember(t, "editor");
    await setPolicy(t, projectId, {
      mode: "multi_level",
      levels: [
        { name: "Team lead", reviewers: [lead.id], required: 1 },
        { name: "Client", reviewers: [clientA.id, clientB.id], required: 2 },
      ],
    });
    const post = await createPost(t, projectId);
    await act(t, post.id, "submit", t.owner.token);
    // The client's level opens only after the lead's.
    expectProblem(await act(t, post.id, "approve", clientA.token, { revision: 1 }), 403, "FORBIDDEN");
    expect((await act(t, post.id, "approve", lead.token, { revision: 1 })).body.status).toBe("in_review");
    // The lead approving again is a no-op: it does not count at the client's level.
    expect((await act(t, post.id, "approve", lead.token, { revision: 1 })).body.status).toBe("in_review");
    expect((await act(t, post.id, "approve", clientA.token, { revision: 1 })).body.status).toBe("in_review");
    expect((await act(t, post.id, "approve", clientB.token, { revision: 1 })).body).toMatchObject({ status: "approved", approved_revision: 1 });
    const levels = (await call(`${t.host}/v1/posts/${post.id}/reviews`, { token: t.owner.token })).body.data.map((r: { level: number }) => r.level);
    expect(levels).toEqual([1, 2, 2]);
  });

  it("end in one consistent state when two reviewers approve while an editor edits", async () => {
    const t = await createTenant();
    const projectId = await createProject(t);
    await setPolicy(t, projectId, { mode: "required", levels: [{ name: "Both", reviewers: null, required: 2 }] });
    const a = await addMember(t, "editor");
    const b = await addMember(t, "editor");
    for (let round = 0; round < 5; round++) {
      const post = await createPost(t, projectId, `Round ${round}`);
      await act(t, post.id, "submit", t.owner.token);
      const [ra, rb, edit] = await Promise.all([
        act(t, post.id, "approve", a.token, { revision: 1 }),
        act(t, post.id, "approve", b.token, { revision: 1 }),
        call(`${t.host}/v1/posts/${post.id}`, { method: "PATCH", token: t.owner.token, body: { title: `Round ${round}, edited` } }),
      ]);
      for (const r of [ra, rb]) expect([200, 409]).toContain(r.status);
      expectStatus(edit, 200);
      const final = await getPost(t, post.id);
      // The edit always lands (revision 2), and an approval of revision 1 never approves revision 2.
      expect(final.revision).toBe(2);
      expect(final.status).toBe("in_review");
      expect(final.approved_revision).toBeNull();
      const approvals = await (await tenantD1(t)).prepare("SELECT revision, count(*) AS n FROM post_reviews WHERE post_id = ? AND decision = 'approved' GROUP BY revision").bind(post.id).all<{ revision: number; n: number }>();
      expect(approvals.results.every((r) => r.revision === 1 && r.n <= 2)).toBe(true);
      // Both approvals counted only if both landed before the edit: then the post was approved at 1 and reopened.
      const events = await (await tenantD1(t)).prepare("SELECT type FROM outbox WHERE subject_id = ? ORDER BY id").bind(post.id).all<{ type: string }>();
      const approvedEvent = events.results.some((e) => e.type === "post.approved");
      expect(approvedEvent).toBe(approvals.results[0]?.n === 2 && [ra, rb].every((r) => r.status === 200));
    }
  });

  it("go straight to approved under a none policy (an edit sends it back to draft), take one approval under optional, and ask for changes with a comment", async () => {
    const t = await createTenant();
    const projectId = await createProject(t);
    const post = await createPost(t, projectId);
    expect((await act(t, post.id, "submit", t.owner.token)).body).toMatchObject({ status: "approved", approved_revision: 1 });
    const edited = await call(`${t.host}/v1/posts/${post.id}`, { method: "PATCH", token: t.owner.token, body: { title: "Edited" } });
    expect(edited.body).toMatchObject({ status: "draft", revision: 2, approved_revision: null });
    expect((await act(t, post.id, "submit", t.owner.token)).body).toMatchObject({ status: "approved", approved_revision: 2 });
    await setPolicy(t, projectId, { mode: "optional" });
    const optional = await createPost(t, projectId);
    expect((await act(t, optional.id, "submit", t.owner.token)).body).toMatchObject({ status: "in_review", review_levels: [{ required: 1 }] });
    expect((await act(t, optional.id, "approve", t.owner.token, { revision: 1 })).body).toMatchObject({ status: "approved", approved_revision: 1 });
    await setPolicy(t, projectId, { mode: "required" });
    const other = await createPost(t, projectId);
    await act(t, other.id, "submit", t.owner.token);
    expectProblem(await act(t, other.id, "request-changes", t.owner.token, { revision: 1, comment: "   " }), 400, "VALIDATION_FAILED");
    expect((await act(t, other.id, "request-changes", t.owner.token, { revision: 1, comment: "Shorter" })).body.status).toBe("changes_requested");
    const viewer = await addMember(t, "viewer");
    expectProblem(await act(t, other.id, "approve", viewer.token, { revision: 1 }), 403, "FORBIDDEN");
    expect((await act(t, other.id, "submit", t.owner.token)).body.status).toBe("in_review");
  });
});

describe("scheduling", () => {
  it("fixes the approved revision, refuses the past naming at, and an edit takes the post off the schedule", async () => {
    const t = await createTenant();
    const projectId = await createProject(t);
    await setPolicy(t, projectId, { mode: "required" });
    expectStatus(await call(`${t.host}/v1/projects/${projectId}/channels`, { token: t.owner.token, body: { channel: "linkedin", name: "Acme", credentials: {} } }), 201);
    const post = await createPost(t, projectId);
    const at = new Date(Date.now() + 3600_000).toISOString();
    expectProblem(await act(t, post.id, "schedule", t.owner.token, { at }), 409, "INVALID_STATE");
    await act(t, post.id, "submit", t.owner.token);
    await act(t, post.id, "approve", t.owner.token, { revision: 1 });
    const past = await act(t, post.id, "schedule", t.owner.token, { at: new Date(Date.now() - 60_000).toISOString() });
    expectProblem(past, 400, "VALIDATION_FAILED");
    expect(past.body.errors[0].field).toBe("at");
    expect((await act(t, post.id, "schedule", t.owner.token, { at })).body).toMatchObject({ status: "scheduled", scheduled_at: at, scheduled_revision: 1 });
    await call(`${t.host}/v1/posts/${post.id}`, { method: "PATCH", token: t.owner.token, body: { title: "Changed after scheduling" } });
    expect(await getPost(t, post.id)).toMatchObject({ status: "in_review", revision: 2, scheduled_at: null, scheduled_revision: null });
  });
});

describe("comments", () => {
  it("anchor to a revision's text, thread and resolve, and refuse a range outside the text naming it", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const projectId = await createProject(t);
    const post = await createPost(t, projectId, "Twelve chars");
    const out = await call(`${t.host}/v1/posts/${post.id}/comments`, { token: t.owner.token, body: { body: "Too far", anchor: { channel: "linkedin", start: 0, end: 40 } } });
    expectProblem(out, 400, "VALIDATION_FAILED");
    expect(out.body.errors[0].field).toBe("anchor.end");
    const noChannel = await call(`${t.host}/v1/posts/${post.id}/comments`, { token: t.owner.token, body: { body: "Where?", anchor: { channel: "x", start: 0, end: 1 } } });
    expect(noChannel.body.errors[0].field).toBe("anchor.channel");
    const root = await call(`${t.host}/v1/posts/${post.id}/comments`, { token: t.owner.token, body: { body: "Love the opening", anchor: { channel: "linkedin", start: 0, end: 6 } } });
    expectStatus(root, 201);
    expect(root.body).toMatchObject({ revision: 1, anchor: { channel: "linkedin", start: 0, end: 6 }, author: { type: "user", id: t.owner.id } });
    const reply = await call(`${t.host}/v1/posts/${post.id}/comments`, { token: t.owner.token, body: { body: "Agreed", parent_id: root.body.id } });
    expectStatus(reply, 201);
    const nested = await call(`${t.host}/v1/posts/${post.id}/comments`, { token: t.owner.token, body: { body: "No", parent_id: reply.body.id } });
    expect(nested.body.errors[0].field).toBe("parent_id");
    const resolved = await call(`${t.host}/v1/posts/${post.id}/comments/${root.body.id}/resolve`, { method: "POST", token: t.owner.token });
    expect(resolved.body.resolved_by).toBe(t.owner.id);
    expect((await call(`${t.host}/v1/posts/${post.id}/comments`, { token: t.owner.token })).body.data).toHaveLength(2);
    expectProblem(await call(`${other.host}/v1/posts/${post.id}/comments`, { token: other.owner.token }), 404, "NOT_FOUND");
    expectProblem(await call(`${other.host}/v1/posts/${post.id}`, { token: other.owner.token }), 404, "NOT_FOUND");
  });
});

describe("guest review links", () => {
  it("let a person without an account view, comment on and approve exactly one post, until revoked or expired", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const projectId = await createProject(t);
    await setPolicy(t, projectId, { mode: "required" });
    const post = await createPost(t, projectId, "Hello spring");
    await act(t, post.id, "submit", t.owner.token);
    const made = await call(`${t.host}/v1/posts/${post.id}/review-links`, { token: t.owner.token, body: { name: "Dana at Acme" } });
    expectStatus(made, 201);
    const token = made.body.token as string;
    expect(Date.parse(made.body.expires_at) - Date.now()).toBeGreaterThan(6.9 * 86_400_000);
    const view = await call(`${t.host}/v1/review/${token}`);
    expectStatus(view, 200);
    expect(view.body).toMatchObject({ reviewer: { name: "Dana at Acme" }, post: { id: post.id, status: "in_review", revision: 1 }, revision: { revision: 1, variants: [{ channel: "linkedin", text: "Hello spring" }] }, comments: [] });
    const comment = await call(`${t.host}/v1/review/${token}/comments`, { body: { body: "Lovely", anchor: { channel: "linkedin", start: 0, end: 5 } } });
    expectStatus(comment, 201);
    expect(comment.body.author).toEqual({ type: "guest", id: made.body.id });
    expectProblem(await call(`${t.host}/v1/review/${token}/approve`, { body: { revision: 2 } }), 409, "STALE_REVISION");
    const approved = await call(`${t.host}/v1/review/${token}/approve`, { body: { revision: 1 } });
    expectStatus(approved, 200);
    expect(approved.body).toMatchObject({ status: "approved", approved_revision: 1 });
    const reviews = await call(`${t.host}/v1/posts/${post.id}/reviews`, { token: t.owner.token });
    expect(reviews.body.data[0].reviewer).toEqual({ type: "guest", id: made.body.id });
    const audit = await call(`${t.host}/v1/audit-log?resource_id=${post.id}`, { token: t.owner.token });
    expect(audit.body.data.find((e: { action: string }) => e.action === "post.review_approved")).toMatchObject({ actor: { type: "guest", id: made.body.id }, details: { guest_name: "Dana at Acme" } });
    // The token is no member credential, another tenant does not know it, and a made-up one is 404.
    expectProblem(await call(`${t.host}/v1/posts/${post.id}`, { token }), 401, "INVALID_TOKEN");
    expectProblem(await call(`${other.host}/v1/review/${token}`), 404, "NOT_FOUND");
    expectProblem(await call(`${t.host}/v1/review/rvw_${"x".repeat(43)}`), 404, "NOT_FOUND");
    // Revoked: 410 at once.
    expectStatus(await call(`${t.host}/v1/posts/${post.id}/review-links/${made.body.id}`, { method: "DELETE", token: t.owner.token }), 204);
    expectProblem(await call(`${t.host}/v1/review/${token}`), 410, "REVIEW_LINK_INVALID");
    expectProblem(await call(`${t.host}/v1/review/${token}/comments`, { body: { body: "Still here?" } }), 410, "REVIEW_LINK_INVALID");
    const comments = await call(`${t.host}/v1/posts/${post.id}/comments`, { token: t.owner.token });
    expect(comments.body.data).toHaveLength(1);
  });

  it("expire after their days, and count only at levels open to anyone who may review", async () => {
    const t = await createTenant();
    const projectId = await createProject(t);
    const lead = await addMember(t, "editor");
    await setPolicy(t, projectId, { mode: "multi_level", levels: [{ name: "Lead", reviewers: [lead.id], required: 1 }, { name: "Client", reviewers: null, required: 1 }] });
    const post = await createPost(t, projectId);
    await act(t, post.id, "submit", t.owner.token);
    const made = await call(`${t.host}/v1/posts/${post.id}/review-links`, { token: t.owner.token, body: { name: "Client", expires_in_days: 1 } });
    // The lead's level names its reviewers: the guest waits for it.
    expectProblem(await call(`${t.host}/v1/review/${made.body.token}/approve`, { body: { revision: 1 } }), 403, "FORBIDDEN");
    await act(t, post.id, "approve", lead.token, { revision: 1 });
    await atTime(Date.now() + 2 * 86_400_000, async () => {
      expectProblem(await call(`${t.host}/v1/review/${made.body.token}/approve`, { body: { revision: 1 } }), 410, "REVIEW_LINK_INVALID");
    });
    expect((await call(`${t.host}/v1/review/${made.body.token}/approve`, { body: { revision: 1 } })).body).toMatchObject({ status: "approved" });
  });
});

describe("review reminders", () => {
  it("remind each level's reviewers once, after its hours of waiting, counted from when the level opened", async () => {
    const t = await createTenant();
    const projectId = await createProject(t);
    const lead = await addMember(t, "editor");
    await setPolicy(t, projectId, {
      mode: "multi_level",
      levels: [
        { name: "Lead", reviewers: [lead.id], required: 1, remind_after_hours: 2 },
        { name: "Client", reviewers: null, required: 1, remind_after_hours: 24 },
      ],
    });
    const post = await createPost(t, projectId);
    await act(t, post.id, "submit", t.owner.token);
    const reminders = async () =>
      (await (await tenantD1(t)).prepare("SELECT data FROM outbox WHERE subject_id = ? AND type = 'post.review_reminder' ORDER BY id").bind(post.id).all<{ data: string }>()).results.map(
        (r) => JSON.parse(r.data) as { level: number; level_name: string; reviewers: string[] | null },
      );
    const cronAt = (hours: number) => atTime(Date.now() + hours * 3600_000, runCron);
    await cronAt(1);
    expect(await reminders()).toEqual([]);
    await cronAt(3);
    await cronAt(4);
    expect(await reminders()).toMatchObject([{ level: 1, level_name: "Lead", reviewers: [lead.id] }]);
    // Once the lead approves, the client's level waits from then: not yet after 3 hours, then reminded after 25.
    await act(t, post.id, "approve", lead.token, { revision: 1 });
    await cronAt(3);
    expect(await reminders()).toHaveLength(1);
    await cronAt(25);
    expect((await reminders()).map((r) => r.level)).toEqual([1, 2]);
    const types = await call(`${t.host}/v1/webhooks/event-types`, { token: t.owner.token });
    const schema = types.body.data.find((e: { type: string }) => e.type === "post.review_reminder").schema;
    const ajv = new Ajv2020({ strict: false });
    for (const data of await reminders()) expect(ajv.validate(schema, { type: "post.review_reminder", timestamp: new Date().toISOString(), data }), ajv.errorsText()).toBe(true);
  });
});
