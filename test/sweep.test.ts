import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { planSweep, SWEEP_GROUP } from "../src/runs/sweeper";
import { adminToken, call, createTenant, expectStatus, PLATFORM } from "./harness";

// The cron does not sweep tenants itself: one read lists this shard's active tenants, and the sweep
// queue carries them in groups, each swept in its own invocation (its own subrequest budget).
describe("the cron's sweep plan", () => {
  it("queues every active tenant of this shard once, in groups of at most 25, and leaves suspended ones out", async () => {
    const active = await createTenant();
    const suspended = await createTenant();
    expectStatus(await call(`${PLATFORM}/v1/platform/tenants/${suspended.id}/suspend`, { token: adminToken(), body: {} }), 200);
    const groups = await planSweep(env, 1_700_000_000_000);
    const ids = groups.flatMap((g) => g.tenant_ids);
    expect(new Set(ids).size).toBe(ids.length);
    expect(groups.every((g) => g.tenant_ids.length <= SWEEP_GROUP && g.tenant_ids.length > 0 && g.at === 1_700_000_000_000 && g.v === 1)).toBe(true);
    expect(ids).toContain(active.id);
    expect(ids).not.toContain(suspended.id);
  });
});
