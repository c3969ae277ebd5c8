import { describe, expect, it } from "vitest";
import { act, createPost, setPolicy } from "../content";
import { addMember, adminToken, call, createKey, createTenant, expectProblem, expectStatus, PLATFORM, type TestTenant } from "../harness";
import { deliverIngest } from "../knowledge";
import { deliverRun } from "../runs";

/** Routes that belong to the tenant as a whole, not to a project: the probe below does not apply. */
const TENANT_WIDE = /^\/(health|\.well-known|openapi|docs)|^\/v1\/(auth|signup|me|members|invitations|api-keys|webhooks|platform|usage|credits|plan|audit-log|prompts|review|exports|settings|erasures)\b/;

/** A body that passes validation for each project-scoped write, so that only the lookup can answer. */
const BODIES: Record<string, (ids: Ids) => { body?: unknown; rawBody?: string; headers?: Record<string, string>; query?: string }> = {
  "POST /v1/agents": (ids) => ({ body: { project_id: ids.project, name: "X", system_prompt: "You write." } }),
  "PATCH /v1/agents/{id}": () => ({ body: { name: "X" } }),
  "POST /v1/projects": () => ({ body: { name: "X" } }),
  "PATCH /v1/knowledge-bases/{id}/documents/{doc}": () => ({ body: { attributes: { kind: "notes" } } }),
  "POST /v1/artifacts": (ids) => ({ rawBody: "x", headers: { "content-type": "text/plain" }, query: `?project_id=${ids.project}&kind=document&name=x` }),
  "POST /v1/artifacts/{id}/versions": () => ({ rawBody: "x", headers: { "content-type": "text/plain" } }),
  "POST /v1/campaigns": (ids) => ({ body: { project_id: ids.project, name: "X" } }),
  "PATCH /v1/campaigns/{id}": () => ({ body: { name: "X" } }),
  "POST /v1/conversations": (ids) => ({ body: { project_id: ids.project } }),
  "PATCH /v1/conversations/{id}": () => ({ body: { title: "X" } }),
  "POST /v1/conversations/{id}/messages": () => ({ body: { content: "Hello" } }),
  "POST /v1/knowledge-bases": (ids) => ({ body: { project_id: ids.project, name: "X" } }),
  "PATCH /v1/knowledge-bases/{id}": () => ({ body: { name: "X" } }),
  "POST /v1/knowledge-bases/search": (ids) => ({ body: { query: "spring", knowledge_base_ids: [ids.base] } }),
  "POST /v1/knowledge-bases/{id}/search": () => ({ body: { query: "spring" } }),
  "POST /v1/knowledge-bases/{id}/documents": () => ({ rawBody: "Spring notes", headers: { "content-type": "text/plain" }, query: "?name=notes.txt" }),
  "PUT /v1/knowledge-bases/{id}/documents/{doc}": () => ({ rawBody: "Spring notes", headers: { "content-type": "text/plain" } }),
  "POST /v1/personas": (ids) => ({ body: { project_id: ids.project, name: "X", voice: "Warm" } }),
  "POST /v1/personas/{id}/versions": () => ({ body: { voice: "Warm" } }),
  "PATCH /v1/personas/{id}": () => ({ body: { name: "X" } }),
  "POST /v1/posts": (ids) => ({ body: { project_id: ids.project, title: "X", variants: [{ channel: "linkedin", text: "Hi" }] } }),
  "PATCH /v1/posts/{id}": () => ({ body: { title: "X", base_revision: 1 } }),
  "POST /v1/posts/{id}/approve": () => ({ body: { revision: 1 } }),
  "POST /v1/posts/{id}/request-changes": () => ({ body: { revision: 1, comment: "No" } }),
  "POST /v1/posts/{id}/schedule": () => ({ body: { at: new Date(Date.now() + 3600_000).toISOString() } }),
  "POST /v1/posts/{id}/comments": () => ({ body: { body: "Hm" } }),
  "POST /v1/posts/{id}/review-links": () => ({ body: { name: "Client" } }),
  "PUT /v1/projects/{id}/approval-policy": () => ({ body: { mode: "none" } }),
  "PATCH /v1/projects/{id}": () => ({ body: { name: "X" } }),
  "POST /v1/projects/{id}/channels": () => ({ body: { channel: "x", name: "X", credentials: {} } }),
  "POST /v1/runs": (ids) => ({ body: { agent_id: ids.agent, project_id: ids.project, input: { text: "hi" } } }),
  "POST /v1/campaigns/{id}/ideas": (ids) => ({ body: { agent_id: ids.agent, count: 1 } }),
};

/** What a member limited to other projects is answered instead of 404: making or deleting projects is not theirs at all. */
const FORBIDDEN = new Set(["POST /v1/projects", "DELETE /v1/projects/{id}"]);

interface Ids {
  project: string;
  agent: string;
  run: string;
  artifact: string;
  base: string;
  doc: string;
  campaign: string;
  conversation: string;
  persona: string;
  post: string;
  comment: string;
  link: string;
  account: string;
  idea: string;
}

/** One of every kind of object in a project, made by the owner through the API. */
async function fill(t: TestTenant, name: string): Promise<Ids> {
  const token = t.owner.token;
  const made = async (url: string, init: Parameters<typeof call>[1]) => {
    const res = await call(`${t.host}${url}`, { token, ...init });
    expect(res.status, `${url}: ${res.text}`).toBeLessThan(300);
    return res.body;
  };
  const project = (await made("/v1/projects", { body: { name } })).id;
  await setPolicy(t, project, { mode: "required" });
  const agent = (await made("/v1/agents", { body: { project_id: project, name: "Writer", system_prompt: "You write." } })).id;
  const run = (await made("/v1/runs", { body: { agent_id: agent, project_id: project, input: { text: "hi" } } })).id;
  const artifact = (await made(`/v1/artifacts?project_id=${project}&kind=document&name=brief.txt`, { rawBody: "Brief", headers: { "content-type": "text/plain" } })).id;
  const base = (await made("/v1/knowledge-bases", { body: { project_id: project, name: "Guide" } })).id;
  const doc = (await made(`/v1/knowledge-bases/${base}/documents?name=notes.txt`, { rawBody: "Spring launch notes", headers: { "content-type": "text/plain" } })).id;
  await deliverIngest(t, doc);
  const campaign = (await made("/v1/campaigns", { body: { project_id: project, name: "Spring", channels: ["linkedin"] } })).id;
  const conversation = (await made("/v1/conversations", { body: { project_id: project } })).id;
  const persona = (await made("/v1/personas", { body: { project_id: project, name: "Brand", voice: "Warm" } })).id;
  const post = (await createPost(t, project)).id;
  const comment = (await made(`/v1/posts/${post}/comments`, { body: { body: "Nice" } })).id;
  const link = (await made(`/v1/posts/${post}/review-links`, { body: { name: "Client" } })).id;
  const account = (await made(`/v1/projects/${project}/channels`, { body: { channel: "linkedin", name: "Acme", credentials: { access_token: "t" } } })).id;
  const ideasRun = (await made(`/v1/campaigns/${campaign}/ideas`, { body: { agent_id: agent, count: 1 } })).id;
  await deliverRun(t, ideasRun);
  const idea = (await made(`/v1/campaigns/${campaign}/ideas`, { method: "GET" })).data[0].id;
  return { project, agent, run, artifact, base, doc, campaign, conversation, persona, post, comment, link, account, idea };
}

/** The ids a path's parameters take for the objects of `ids`. */
function fillPath(path: string, ids: Ids): string {
  const byCollection: Record<string, string> = {
    projects: ids.project,
    agents: ids.agent,
    runs: ids.run,
    artifacts: ids.artifact,
    "knowledge-bases": ids.base,
    campaigns: ids.campaign,
    conversations: ids.conversation,
    personas: ids.persona,
    posts: ids.post,
    ideas: ids.idea,
  };
  const collection = path.split("/")[2]!;
  return path
    .replace("{id}", byCollection[collection] ?? "?")
    .replace("{version}", "1")
    .replace("{revision}", "1")
    .replace("{doc}", ids.doc)
    .replace("{commentId}", ids.comment)
    .replace("{linkId}", ids.link)
    .replace("{accountId}", ids.account);
}

/** Every operation of the API, from its own OpenAPI document. */
async function operations(t: TestTenant): Promise<{ method: string; path: string }[]> {
  const doc = await call(`${t.host}/openapi.json`);
  expectStatus(doc, 200);
  return Object.entries(doc.body.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) => Object.keys(ops).map((method) => ({ method: method.toUpperCase(), path })));
}

const request = (t: TestTenant, token: string, op: { method: string; path: string }, ids: Ids) => {
  const extra = BODIES[`${op.method} ${op.path}`]?.(ids) ?? {};
  return call(`${t.host}${fillPath(op.path, ids)}${extra.query ?? ""}`, { method: op.method, token, body: extra.body, rawBody: extra.rawBody, headers: extra.headers });
};

describe("project-level membership", () => {
  it("hides every other project's object on every route from a member limited to some projects, as another tenant's is hidden", async () => {
    const t = await createTenant();
    // Two hundred-odd calls: on a plan whose request limits leave room for them.
    expectStatus(await call(`${PLATFORM}/v1/platform/tenants/${t.id}/plan`, { token: adminToken(), body: { plan: "enterprise" } }), 200);
    const mine = await fill(t, "Assigned");
    const theirs = await fill(t, "Not assigned");
    const editor = await addMember(t, "editor", undefined, [mine.project]);
    const key = await createKey(t, editor.token, ["projects:read", "posts:read", "runs:read", "conversations:read", "knowledge:read", "artifacts:read", "agents:read", "campaigns:read"]);

    const ops = (await operations(t)).filter((op) => !TENANT_WIDE.test(op.path));
    expect(ops.length).toBeGreaterThan(60);
    const leaks: string[] = [];
    // Lists (GETs without an id) answer 200 and are checked for what they hold below.
    for (const op of ops.filter((o) => o.method !== "GET" || o.path.includes("{"))) {
      const name = `${op.method} ${op.path}`;
      const res = await request(t, editor.token, op, theirs);
      const expected = FORBIDDEN.has(name) ? 403 : 404;
      if (res.status !== expected) leaks.push(`${name}: ${res.status} ${res.text.slice(0, 160)}`);
      if (op.method === "GET") {
        const viaKey = await request(t, key.key, op, theirs);
        if (viaKey.status !== 404 && viaKey.status !== 403) leaks.push(`${name} (key): ${viaKey.status}`);
      }
    }
    expect(leaks).toEqual([]);
    // A body naming another project's object through something else than its project_id: a campaign.
    const inTheirCampaign = await call(`${t.host}/v1/posts`, { token: editor.token, body: { campaign_id: theirs.campaign, title: "X", variants: [{ channel: "linkedin", text: "Hi" }] } });
    expectProblem(inTheirCampaign, 404, "NOT_FOUND");
    expect(inTheirCampaign.body.errors[0].field).toBe("campaign_id");

    // Lists leave the other project out; filtering by it finds nothing.
    for (const list of ["projects", "agents", "runs", "artifacts", "knowledge-bases", "campaigns", "conversations", "personas", "posts"]) {
      const all = await call(`${t.host}/v1/${list}?limit=100`, { token: editor.token });
      expectStatus(all, 200);
      const listed = JSON.stringify(all.body.data);
      for (const id of Object.values(theirs).filter(Boolean)) expect(listed, `${list} lists ${id}`).not.toContain(id);
      expect(all.body.data.length, `${list} lists the assigned project's`).toBeGreaterThan(0);
      if (list !== "projects") {
        const filtered = await call(`${t.host}/v1/${list}?project_id=${theirs.project}`, { token: editor.token });
        expect(filtered.status === 404 || filtered.body.data?.length === 0, `${list}?project_id: ${filtered.text}`).toBe(true);
      }
    }

    // The owner, on the same routes, reaches the objects: the probe above touched real things.
    for (const op of ops.filter((o) => o.method === "GET" && o.path.includes("{"))) {
      // A socket and a live event stream stay open for whoever reaches them; the others answer.
      if (op.path.endsWith("/connect") || op.path.endsWith("/events")) continue;
      const res = await request(t, t.owner.token, op, theirs);
      expect(res.status, `${op.method} ${op.path} as the owner: ${res.text.slice(0, 200)}`).toBeLessThan(300);
    }
  });

  it("gives a client the assigned projects' content to read and review, and nothing else", async () => {
    const t = await createTenant();
    const a = await fill(t, "Client A");
    const b = await fill(t, "Client B");
    const client = await addMember(t, "client", undefined, [a.project]);

    // It sees its project's posts and campaigns, not the other's.
    const posts = await call(`${t.host}/v1/posts`, { token: client.token });
    expect(posts.body.data.map((p: { id: string }) => p.id)).toEqual([a.post]);
    expect((await call(`${t.host}/v1/projects`, { token: client.token })).body.data.map((p: { id: string }) => p.id)).toEqual([a.project]);
    expectProblem(await call(`${t.host}/v1/posts/${b.post}`, { token: client.token }), 404, "NOT_FOUND");

    // It reviews and comments in its project…
    expectStatus(await act(t, a.post, "submit", t.owner.token), 200);
    const comment = await call(`${t.host}/v1/posts/${a.post}/comments`, { token: client.token, body: { body: "Make it shorter" } });
    expectStatus(comment, 201);
    const approved = await act(t, a.post, "approve", client.token, { revision: 1 });
    expectStatus(approved, 200);
    expect(approved.body.status).toBe("approved");
    // …but not in the other, and it writes nothing.
    expectStatus(await act(t, b.post, "submit", t.owner.token), 200);
    expectProblem(await act(t, b.post, "approve", client.token, { revision: 1 }), 404, "NOT_FOUND");
    expect((await call(`${t.host}/v1/posts/${b.post}`, { token: t.owner.token })).body.status).toBe("in_review");

    // A client edits nothing, runs nothing, chats nowhere, and makes no keys.
    expectProblem(await call(`${t.host}/v1/posts/${a.post}`, { method: "PATCH", token: client.token, body: { title: "Mine now", base_revision: 1 } }), 403, "FORBIDDEN");
    expectProblem(await call(`${t.host}/v1/conversations`, { token: client.token }), 403, "FORBIDDEN");
    expectProblem(await call(`${t.host}/v1/runs`, { token: client.token, body: { agent_id: a.agent, project_id: a.project, input: { text: "hi" } } }), 403, "FORBIDDEN");
    expectProblem(await call(`${t.host}/v1/api-keys`, { token: client.token, body: { name: "k", scopes: ["posts:read"] } }), 403, "FORBIDDEN");
  });

  it("takes effect at once when an admin narrows, widens or clears a member's projects, and for their keys", async () => {
    const t = await createTenant();
    const a = await fill(t, "A");
    const b = await fill(t, "B");
    const editor = await addMember(t, "editor");
    const key = await createKey(t, editor.token, ["posts:read", "posts:write"]);
    expectStatus(await call(`${t.host}/v1/posts/${b.post}`, { token: key.key }), 200);

    const narrowed = await call(`${t.host}/v1/members/${editor.id}`, { method: "PATCH", token: t.owner.token, body: { projects: [a.project] } });
    expectStatus(narrowed, 200);
    expect(narrowed.body).toMatchObject({ role: "editor", projects: [a.project] });
    // The very next request, by token or key, sees only project A.
    expectProblem(await call(`${t.host}/v1/posts/${b.post}`, { token: editor.token }), 404, "NOT_FOUND");
    expectProblem(await call(`${t.host}/v1/posts/${b.post}`, { token: key.key }), 404, "NOT_FOUND");
    expectProblem(await call(`${t.host}/v1/posts/${b.post}`, { method: "PATCH", token: key.key, body: { title: "Edited", base_revision: 1 } }), 404, "NOT_FOUND");
    expectStatus(await call(`${t.host}/v1/posts/${a.post}`, { token: key.key }), 200);
    // Limited, an editor no longer changes what every project shares.
    expectProblem(await call(`${t.host}/v1/prompts/probe/versions`, { token: editor.token, body: { template: "Hi" } }), 403, "FORBIDDEN");
    expectProblem(await call(`${t.host}/v1/projects`, { token: editor.token, body: { name: "Mine" } }), 403, "FORBIDDEN");

    const cleared = await call(`${t.host}/v1/members/${editor.id}`, { method: "PATCH", token: t.owner.token, body: { projects: null } });
    expect(cleared.body.projects).toBeNull();
    expectStatus(await call(`${t.host}/v1/posts/${b.post}`, { token: key.key }), 200);

    const members = await call(`${t.host}/v1/members`, { token: t.owner.token });
    expect(members.body.data.find((m: { user_id: string }) => m.user_id === editor.id).projects).toBeNull();
  });

  it("names the field when an assignment does not fit the role, and writes nothing", async () => {
    const t = await createTenant();
    const a = await fill(t, "A");
    const editor = await addMember(t, "editor");
    const patch = (body: unknown) => call(`${t.host}/v1/members/${editor.id}`, { method: "PATCH", token: t.owner.token, body });
    const field = (res: Awaited<ReturnType<typeof call>>) => res.body.errors?.[0]?.field;
    const problem = (res: Awaited<ReturnType<typeof call>>, status: number, code: string) => {
      expectProblem(res, status, code);
      return res;
    };

    expect(field(problem(await patch({ role: "client" }), 400, "VALIDATION_FAILED"))).toBe("projects");
    expect(field(problem(await patch({ role: "admin", projects: [a.project] }), 400, "VALIDATION_FAILED"))).toBe("projects");
    expect(field(problem(await patch({ projects: [] }), 400, "VALIDATION_FAILED"))).toBe("projects");
    expect(field(problem(await patch({ projects: ["prj_absent"] }), 404, "NOT_FOUND"))).toBe("projects");
    expect(field(problem(await patch({}), 400, "VALIDATION_FAILED"))).toBe("role");
    const other = await createTenant();
    const foreign = (await call(`${other.host}/v1/projects`, { token: other.owner.token, body: { name: "Theirs" } })).body.id;
    expectProblem(await patch({ projects: [foreign] }), 404, "NOT_FOUND");
    expect((await call(`${t.host}/v1/members`, { token: t.owner.token })).body.data.find((m: { user_id: string }) => m.user_id === editor.id)).toMatchObject({ role: "editor", projects: null });

    // An invitation carries the assignment into the membership it makes.
    const invited = await call(`${t.host}/v1/invitations`, { token: t.owner.token, body: { email: "client@example.test", role: "client" } });
    expect(field(problem(invited, 400, "VALIDATION_FAILED"))).toBe("projects");
    const client = await addMember(t, "client", "client@example.test", [a.project]);
    expect((await call(`${t.host}/v1/me`, { token: client.token })).body).toMatchObject({ role: "client", projects: [a.project] });
  });
});
