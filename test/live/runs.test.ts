import { describe, expect, it } from "vitest";
import { call, createTenant, expectStatus } from "../harness";
import { createAgent, getRun, runEvents, startRun } from "../runs";

// Here the Queues runtime delivers messages itself, as wrangler.toml configures the consumers:
// this is the path a deployed run takes, end to end.
describe("runs through the real queue", () => {
  it("a queued run is picked up by the runs consumer and succeeds, without a test delivering it", async () => {
    const t = await createTenant();
    const a = await createAgent(t);
    const run = await startRun(t, a, { text: "Delivered by the runtime" });
    // The SSE stream ends when the run does; the consumer's batch timeout is a few seconds.
    const events = await runEvents(t, run.id);
    expect(events.map((e) => e.type)).toEqual(["run.created", "run.started", "run.succeeded"]);
    const done = await getRun(t, run.id);
    expect(done).toMatchObject({ status: "SUCCEEDED", attempts: 1 });
    const content = await call(`${t.host}/v1/artifacts/${done.artifact_id}/versions/1/content`, { token: t.owner.token });
    expectStatus(content, 200);
    expect(content.text).toContain("Delivered by the runtime");
  }, 30_000);
});
