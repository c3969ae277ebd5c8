import { describe, expect, it } from "vitest";
import { createTenant } from "../harness";
import { createAgent, startRun } from "../runs";
import { createEndpoint, inbox, verify } from "../webhooks";

describe("webhooks on the real queues", () => {
  it("deliver run events as the runtime runs the run, each signed, with no hand-delivered batch", async () => {
    const t = await createTenant();
    const box = inbox();
    const endpoint = await createEndpoint(t, { url: box.url, event_types: ["run.created", "run.succeeded"] });
    const a = await createAgent(t);
    const run = await startRun(t, a, { text: "live hooks" });
    await expect.poll(async () => (await box.deliveries()).map((d) => JSON.parse(d.body).type).sort(), { timeout: 15_000, interval: 100 }).toEqual(["run.created", "run.succeeded"]);
    for (const d of await box.deliveries()) expect((verify(endpoint.secret, d) as { data: { id: string } }).data.id).toBe(run.id);
  }, 30_000);
});
