import { describe, expect, it } from "vitest";
import { ideasJsonSchema } from "../../src/content/ideas";
import { addMember, call, createTenant, expectProblem, expectStatus, tenantD1, type TestTenant } from "../harness";
import { countRows, deliverRun, getRun } from "../runs";

/** A project with a persona, an agent writing in it, and a campaign on two channels. */
async function setUp(t: TestTenant, campaign: Record<string, unknown> = {}) {
  const token = t.owner.token;
  const project = (await call(`${t.host}/v1/projects`, { token, body: { name: "Acme" } })).body.id as string;
  const persona = await call(`${t.host}/v1/personas`, { token, body: { project_id: project, name: "Acme voice", voice: "Warm, plain words", audience: "Small bakeries" } });
  expectStatus(persona, 201);
  const agent = await call(`${t.host}/v1/agents`, { token, body: { project_id: project, name: "Planner", system_prompt: "You plan social content.", persona_id: persona.body.id } });
  expectStatus(agent, 201);
  const created = await call(`${t.host}/v1/campaigns`, { token, body: { project_id: project, name: "Spring launch", goal: "Pre-orders", channels: ["linkedin", "instagram"], ...campaign } });
  expectStatus(created, 201);
  return { project, persona: persona.body.id as string, agent: agent.body.id as string, campaign: created.body.id as string };
}

const ask = (t: TestTenant, campaign: string, body: Record<string, unknown>, token = t.owner.token) => call(`${t.host}/v1/campaigns/${campaign}/ideas`, { token, body });
const ideasOf = async (t: TestTenant, campaign: string, query = "") => (await call(`${t.host}/v1/campaigns/${campaign}/ideas${query}`, { token: t.owner.token })).body.data as Idea[];

interface Idea {
  id: string;
  seq: number;
  title: string;
  channel: string;
  draft: string;
  [field: string]: unknown;
}

describe("campaign ideas", () => {
  it("queues a run that answers schema-valid ideas in the persona's voice, stored with its success", async () => {
    const t = await createTenant();
    const s = await setUp(t);
    const queued = await ask(t, s.campaign, { agent_id: s.agent, count: 3, brief: "Sourdough season" });
    expectStatus(queued, 202);
    expect(queued.headers.get("location")).toBe(`/v1/runs/${queued.body.id}`);
    expect(queued.body).toMatchObject({ status: "PENDING", project_id: s.project, agent_id: s.agent, input: { campaign_id: s.campaign, count: 3, brief: "Sourdough season" } });
    expect(await ideasOf(t, s.campaign)).toEqual([]);

    await deliverRun(t, queued.body.id);
    const run = await getRun(t, queued.body.id);
    expect(run.status).toBe("SUCCEEDED");
    // Grounded in the persona: the run records the version its system prompt began with.
    expect(run.persona).toEqual({ id: s.persona, version: 1 });
    expect(run.usage.provider).toBe("local");
    expect(await countRows(t, "SELECT count(*) AS n FROM usage_events WHERE source_id = ?", run.id)).toBe(1);

    const ideas = await ideasOf(t, s.campaign);
    expect(ideas).toHaveLength(3);
    expect(ideas.map((i) => i.seq).sort()).toEqual([0, 1, 2]);
    for (const idea of ideas) {
      expect(idea).toMatchObject({ campaign_id: s.campaign, project_id: s.project, run_id: run.id, post_id: null });
      expect(["linkedin", "instagram"]).toContain(idea.channel);
      expect(idea.title.length).toBeGreaterThan(0);
      expect(idea.draft.length).toBeGreaterThan(0);
    }
    // The run's artifact is the checked answer, as JSON.
    const content = await call(`${t.host}/v1/artifacts/${run.artifact_id}/versions/1/content`, { token: t.owner.token });
    expect(content.headers.get("content-type")).toContain("application/json");
    expect(JSON.parse(content.text).ideas.map((i: { title: string }) => i.title).sort()).toEqual(ideas.map((i) => i.title).sort());
    expect((await ideasOf(t, s.campaign, `?run_id=${run.id}&limit=2`)).length).toBe(2);
  });

  it("makes an idea a draft post in its campaign with one call, once", async () => {
    const t = await createTenant();
    const s = await setUp(t);
    const queued = await ask(t, s.campaign, { agent_id: s.agent, count: 2 });
    await deliverRun(t, queued.body.id);
    const [idea, other] = await ideasOf(t, s.campaign);

    const made = await call(`${t.host}/v1/ideas/${idea!.id}/post`, { method: "POST", token: t.owner.token });
    expectStatus(made, 201);
    expect(made.body).toMatchObject({ campaign_id: s.campaign, project_id: s.project, status: "draft", title: idea!.title, current: { revision: 1, variants: [{ channel: idea!.channel, text: idea!.draft, media: [], link: null }] } });
    // Again: the same post.
    const again = await call(`${t.host}/v1/ideas/${idea!.id}/post`, { method: "POST", token: t.owner.token });
    expectStatus(again, 200);
    expect(again.body.id).toBe(made.body.id);
    expect((await call(`${t.host}/v1/ideas/${idea!.id}`, { token: t.owner.token })).body.post_id).toBe(made.body.id);
    // The other idea, twice at once: one makes the post, the other answers it.
    const [a, b] = await Promise.all([
      call(`${t.host}/v1/ideas/${other!.id}/post`, { method: "POST", token: t.owner.token }),
      call(`${t.host}/v1/ideas/${other!.id}/post`, { method: "POST", token: t.owner.token }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 201]);
    expect(a.body.id).toBe(b.body.id);
    expect(await countRows(t, "SELECT count(*) AS n FROM posts WHERE campaign_id = ?", s.campaign)).toBe(2);
    expect((await call(`${t.host}/v1/audit-log?action=idea.used`, { token: t.owner.token })).body.data).toHaveLength(2);
  });

  it("asks again for a malformed answer, then fails the run clearly, billed, with nothing stored", async () => {
    const t = await createTenant();
    const s = await setUp(t);
    // Malformed once: the second answer fits, and the run succeeds with both calls' tokens.
    const once = await ask(t, s.campaign, { agent_id: s.agent, count: 2, brief: "[[simulate malformed output 1x]]" });
    await deliverRun(t, once.body.id);
    const recovered = await getRun(t, once.body.id);
    expect(recovered.status).toBe("SUCCEEDED");
    // Against the same request answered at the first try: the retry sent the prompt again, with the bad answer and what was wrong.
    const clean = await ask(t, s.campaign, { agent_id: s.agent, count: 2, brief: "[[simulate malformed output 0x]]" });
    await deliverRun(t, clean.body.id);
    expect(recovered.usage.tokens_in).toBeGreaterThan(2 * (await getRun(t, clean.body.id)).usage.tokens_in);
    expect(await ideasOf(t, s.campaign, `?run_id=${once.body.id}`)).toHaveLength(2);

    const always = await ask(t, s.campaign, { agent_id: s.agent, count: 2, brief: "[[simulate malformed output]]" });
    await deliverRun(t, always.body.id);
    const failed = await getRun(t, always.body.id);
    expect(failed.status).toBe("FAILED");
    expect(failed.error.code).toBe("malformed_output");
    expect(failed.error.message).toContain("after 3 tries");
    expect(failed.error.message).toContain("not JSON");
    expect(failed.artifact_id).toBeNull();
    expect(await ideasOf(t, s.campaign, `?run_id=${always.body.id}`)).toEqual([]);
    expect(await countRows(t, "SELECT count(*) AS n FROM artifacts WHERE run_id = ?", always.body.id)).toBe(0);
    // The three calls' tokens are billed once, and the month's hold is given back.
    expect(failed.usage.tokens_in).toBeGreaterThan(0);
    const event = await (await tenantD1(t)).prepare("SELECT tokens_in, tokens_out FROM usage_events WHERE source_id = ?").bind(always.body.id).first<{ tokens_in: number; tokens_out: number }>();
    expect(event).toEqual({ tokens_in: failed.usage.tokens_in, tokens_out: failed.usage.tokens_out });
    expect(await countRows(t, "SELECT count(*) AS n FROM quota_holds WHERE reference = ?", always.body.id)).toBe(0);
  });

  it("holds the answer to the persona's banned words, as to its schema", async () => {
    const t = await createTenant();
    const s = await setUp(t);
    // The local model writes the request's first line into its ideas: the campaign's name, "Spring launch".
    expectStatus(await call(`${t.host}/v1/personas/${s.persona}/versions`, { token: t.owner.token, body: { voice: "Warm", banned_words: ["LAUNCH"] } }), 201);
    const queued = await ask(t, s.campaign, { agent_id: s.agent, count: 1 });
    await deliverRun(t, queued.body.id);
    const run = await getRun(t, queued.body.id);
    expect(run.persona).toEqual({ id: s.persona, version: 2 });
    expect(run.error).toMatchObject({ code: "malformed_output" });
    expect(run.error.message).toContain('ideas.0.title: uses the banned word "launch"');
    expect(await ideasOf(t, s.campaign)).toEqual([]);
    // "launches" or "relaunch" are other words: a banned word counts whole.
    expectStatus(await call(`${t.host}/v1/personas/${s.persona}/versions`, { token: t.owner.token, body: { voice: "Warm", banned_words: ["launc", "spring launch plan"] } }), 201);
    const allowed = await ask(t, s.campaign, { agent_id: s.agent, count: 1 });
    await deliverRun(t, allowed.body.id);
    expect((await getRun(t, allowed.body.id)).status).toBe("SUCCEEDED");
  });

  it("cancels like any run: a canceled ideas run stores no ideas", async () => {
    const t = await createTenant();
    const s = await setUp(t);
    const queued = await ask(t, s.campaign, { agent_id: s.agent, count: 1 });
    expectStatus(await call(`${t.host}/v1/runs/${queued.body.id}/cancel`, { method: "POST", token: t.owner.token }), 200);
    await deliverRun(t, queued.body.id);
    expect((await getRun(t, queued.body.id)).status).toBe("CANCELED");
    expect(await ideasOf(t, s.campaign)).toEqual([]);
  });

  it("names what is wrong with a request, and writes nothing", async () => {
    const t = await createTenant();
    const s = await setUp(t);
    const field = (res: Awaited<ReturnType<typeof call>>) => res.body.errors?.[0]?.field;
    for (const count of [0, 21, 2.5]) {
      const res = await ask(t, s.campaign, { agent_id: s.agent, count });
      expectProblem(res, 400, "VALIDATION_FAILED");
      expect(field(res)).toBe("count");
    }
    const other = await setUp(t);
    const foreignAgent = await ask(t, s.campaign, { agent_id: other.agent, count: 1 });
    expectProblem(foreignAgent, 400, "VALIDATION_FAILED");
    expect(field(foreignAgent)).toBe("agent_id");
    const foreignPersona = await ask(t, s.campaign, { agent_id: s.agent, count: 1, persona_id: other.persona });
    expectProblem(foreignPersona, 404, "NOT_FOUND");
    expect(field(foreignPersona)).toBe("persona_id");
    const bare = await setUp(t, { channels: [] });
    expectProblem(await ask(t, bare.campaign, { agent_id: bare.agent, count: 1 }), 400, "VALIDATION_FAILED");
    expectStatus(await call(`${t.host}/v1/campaigns/${s.campaign}/archive`, { method: "POST", token: t.owner.token }), 200);
    expectProblem(await ask(t, s.campaign, { agent_id: s.agent, count: 1 }), 409, "INVALID_STATE");
    expect(await countRows(t, "SELECT count(*) AS n FROM runs")).toBe(0);

    // Another tenant's campaign or idea is not found; a client may not ask for ideas.
    const stranger = await createTenant();
    expectProblem(await ask(stranger, s.campaign, { agent_id: s.agent, count: 1 }), 404, "NOT_FOUND");
    expectProblem(await call(`${stranger.host}/v1/ideas/ida_absent/post`, { method: "POST", token: stranger.owner.token }), 404, "NOT_FOUND");
    const client = await addMember(t, "client", undefined, [other.project]);
    expectProblem(await ask(t, other.campaign, { agent_id: other.agent, count: 1 }, client.token), 403, "FORBIDDEN");
  });

  it("asks the model for the very schema it checks against", () => {
    type Node = { type?: string; minItems?: number; maxItems?: number; enum?: string[]; required?: string[]; items?: Node; properties?: Record<string, Node> };
    const schema = ideasJsonSchema({ count: 2, channels: ["linkedin"] }) as Node;
    const ideas = schema.properties!.ideas!;
    expect(ideas).toMatchObject({ type: "array", minItems: 2, maxItems: 2 });
    expect(ideas.items!.properties!.channel!.enum).toEqual(["linkedin"]);
    expect(ideas.items!.required!.sort()).toEqual(["angle", "channel", "draft", "title"]);
  });
});
