import { describe, expect, it } from "vitest";
import { LOCAL_REJECTION_TRIGGER } from "../../src/providers/ai/local";
import { pickByWeight, renderTemplate, templateVariables } from "../../src/runs/template";
import { call, createTenant, expectProblem, expectStatus, type TestTenant } from "../harness";
import { createAgent, deliverRun, getRun, startRun } from "../runs";

const addVersion = (t: TestTenant, key: string, body: Record<string, unknown>) => call(`${t.host}/v1/prompts/${key}/versions`, { token: t.owner.token, body });

describe("prompt templates", () => {
  it("finds {{variables}} and fills them, naming the ones missing", () => {
    expect(templateVariables("Write about {{topic}} for {{ audience }}; {{topic}} again")).toEqual(["topic", "audience"]);
    expect(renderTemplate("Hi {{name}}, {{n}} left", { name: "Ada", n: 3 }, 1000)).toEqual({ ok: true, text: "Hi Ada, 3 left" });
    expect(renderTemplate("Hi {{name}} from {{city}}", { name: "Ada" }, 1000)).toEqual({ ok: false, missing: ["city"] });
    // Only own properties are variables: nothing inherited from Object.prototype renders.
    expect(renderTemplate("{{constructor}} {{toString}} {{__proto__}}", { toString: "own" }, 1000)).toEqual({ ok: false, missing: ["constructor", "__proto__"] });
    expect(renderTemplate("{{a}}{{a}}{{a}}", { a: "xyz" }, 8)).toEqual({ ok: false, tooLong: 9 });
  });

  it("picks versions in proportion to their weights", () => {
    const versions = [{ v: 1, weight: 25 }, { v: 2, weight: 75 }, { v: 3, weight: 0 }];
    const picks = Array.from({ length: 100 }, (_, i) => pickByWeight(versions, i / 100)!.v);
    expect(picks.filter((v) => v === 1)).toHaveLength(25);
    expect(picks.filter((v) => v === 2)).toHaveLength(75);
    expect(pickByWeight([{ weight: 0 }], 0.5)).toBeNull();
  });
});

describe("prompts", () => {
  it("numbers immutable versions; the first takes all traffic, later ones none until weighted", async () => {
    const t = await createTenant();
    const v1 = await addVersion(t, "blog.intro", { template: "Write an intro about {{topic}}." });
    expectStatus(v1, 201);
    expect(v1.body).toMatchObject({ version: 1, weight: 100, variables: ["topic"] });
    const v2 = await addVersion(t, "blog.intro", { template: "Open with a question about {{topic}} for {{audience}}.", note: "question hook" });
    expect(v2.body).toMatchObject({ version: 2, weight: 0, variables: ["topic", "audience"], note: "question hook" });
    const prompt = await call(`${t.host}/v1/prompts/blog.intro`, { token: t.owner.token });
    expect(prompt.body).toMatchObject({ key: "blog.intro", latest_version: 2 });
    expect(prompt.body.versions.map((v: { version: number; weight: number }) => [v.version, v.weight])).toEqual([[1, 100], [2, 0]]);
    expect((await call(`${t.host}/v1/prompts/blog.intro/versions/1`, { token: t.owner.token })).body.template).toBe("Write an intro about {{topic}}.");
    // There is no way to change a version: no PATCH/PUT route exists for one.
    expectProblem(await call(`${t.host}/v1/prompts/blog.intro/versions/1`, { method: "PATCH", token: t.owner.token, body: { template: "x" } }), 405, "METHOD_NOT_ALLOWED");
    expect((await call(`${t.host}/v1/prompts`, { token: t.owner.token })).body.data.map((p: { key: string }) => p.key)).toEqual(["blog.intro"]);
  });

  it("gives concurrent new versions consecutive numbers", async () => {
    const t = await createTenant();
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => addVersion(t, "race", { template: `v ${i}` })));
    for (const r of results) expectStatus(r, 201);
    expect(results.map((r) => r.body.version).sort()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(results.filter((r) => r.body.weight === 100)).toHaveLength(1);
  });

  it("splits runs by weight, records the version each used, and compares versions", async () => {
    const t = await createTenant();
    await addVersion(t, "launch", { template: "Announce {{product}} plainly." });
    await addVersion(t, "launch", { template: `Announce {{product}} ${LOCAL_REJECTION_TRIGGER}` });
    const weights = await call(`${t.host}/v1/prompts/launch/weights`, { method: "PUT", token: t.owner.token, body: { weights: { "1": 50, "2": 50 } } });
    expectStatus(weights, 200);
    expect(weights.body.versions.map((v: { weight: number }) => v.weight)).toEqual([50, 50]);
    const a = await createAgent(t, { prompt_key: "launch" });
    const runs: Awaited<ReturnType<typeof startRun>>[] = [];
    for (let i = 0; i < 30; i++) runs.push(await startRun(t, a, { product: `Widget ${i}` }));
    const versions = runs.map((r) => (r.prompt as { version: number }).version);
    // 30 fair coin flips all landing one way happens once in 500 million runs of this test.
    expect(new Set(versions)).toEqual(new Set([1, 2]));
    for (const r of runs) expect(await deliverRun(t, r.id)).toMatchObject({ acked: true });
    const byVersion = (v: number) => runs.filter((r) => (r.prompt as { version: number }).version === v).length;
    const stats = await call(`${t.host}/v1/prompts/launch/stats`, { token: t.owner.token });
    expectStatus(stats, 200);
    const [s1, s2] = stats.body.versions;
    expect(s1).toMatchObject({ version: 1, weight: 50, runs: byVersion(1), succeeded: byVersion(1), failed: 0, failure_rate: 0, in_progress: 0 });
    expect(s2).toMatchObject({ version: 2, weight: 50, runs: byVersion(2), succeeded: 0, failed: byVersion(2), failure_rate: 1, tokens_in: 0 });
    expect(s1.tokens_in).toBeGreaterThan(0);
    expect(s1.tokens_out).toBeGreaterThan(0);
    expect(s1.avg_latency_ms).toBeGreaterThanOrEqual(0);
    expect(s2.avg_latency_ms).toBeNull();
    // A run's output came from its version's template.
    const one = await getRun(t, runs.find((r) => (r.prompt as { version: number }).version === 1)!.id);
    expect(one.output).toContain("Announce Widget");

    // Moving all traffic to version 1; a pinned version overrides the weights.
    await call(`${t.host}/v1/prompts/launch/weights`, { method: "PUT", token: t.owner.token, body: { weights: { "1": 1 } } });
    expect((await startRun(t, a, { product: "X" })).prompt).toEqual({ key: "launch", version: 1 });
    expect((await startRun(t, a, { product: "X" }, { prompt_version: 2 })).prompt).toEqual({ key: "launch", version: 2 });
  });

  it("names what is wrong: a missing variable, an unknown version, weights of nothing", async () => {
    const t = await createTenant();
    await addVersion(t, "greet", { template: "Greet {{name}} from {{city}}" });
    const a = await createAgent(t, { prompt_key: "greet" });
    const missing = await call(`${t.host}/v1/runs`, { token: t.owner.token, body: { agent_id: a.agentId, project_id: a.projectId, input: { name: "Ada" } } });
    expectProblem(missing, 400, "VALIDATION_FAILED");
    expect(missing.body.errors).toEqual([{ in: "body", field: "input.city", message: "the prompt uses this variable" }]);
    const pinned = await call(`${t.host}/v1/runs`, { token: t.owner.token, body: { agent_id: a.agentId, project_id: a.projectId, input: { name: "A", city: "B" }, prompt_version: 9 } });
    expectProblem(pinned, 404, "NOT_FOUND");
    expect(pinned.body.errors[0].field).toBe("prompt_version");
    const unknown = await call(`${t.host}/v1/prompts/greet/weights`, { method: "PUT", token: t.owner.token, body: { weights: { "1": 10, "7": 5 } } });
    expectProblem(unknown, 404, "NOT_FOUND");
    expect(unknown.body.errors[0].field).toBe("weights.7");
    expectProblem(await call(`${t.host}/v1/prompts/greet/weights`, { method: "PUT", token: t.owner.token, body: { weights: {} } }), 400, "VALIDATION_FAILED");
    // All weights at zero pause the prompt: only runs that pin a version use it.
    expectStatus(await call(`${t.host}/v1/prompts/greet/weights`, { method: "PUT", token: t.owner.token, body: { weights: { "1": 0 } } }), 200);
    expectProblem(await addVersion(t, "Not A Key", { template: "x" }), 400, "VALIDATION_FAILED");
    expectProblem(await addVersion(t, "greet", { template: "" }), 400, "VALIDATION_FAILED");
    expectProblem(await call(`${t.host}/v1/prompts/absent/stats`, { token: t.owner.token }), 404, "NOT_FOUND");
  });

  it("keeps prompts inside their tenant", async () => {
    const t = await createTenant();
    const other = await createTenant();
    await addVersion(t, "private", { template: "secret {{x}}" });
    expectProblem(await call(`${other.host}/v1/prompts/private`, { token: other.owner.token }), 404, "NOT_FOUND");
    expectProblem(await call(`${other.host}/v1/prompts/private/stats`, { token: other.owner.token }), 404, "NOT_FOUND");
    // The same key in another tenant is another prompt, starting at version 1.
    expect((await addVersion(other, "private", { template: "mine" })).body.version).toBe(1);
    expect((await call(`${t.host}/v1/prompts/private`, { token: t.owner.token })).body.versions).toHaveLength(1);
  });
});
