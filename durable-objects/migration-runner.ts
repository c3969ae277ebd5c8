import { DurableObject } from "cloudflare:workers";
import { stepRollout } from "../src/db/migrations/rollouts";
import type { Env } from "../src/env";
import { createLogger, errorFields } from "../src/lib/log";

/** How soon a step that threw (not a migration failure: D1 or the control database unreachable) runs again. */
const RETRY_MS = 10_000;

/**
 * The one object that drives schema rollouts (named "platform"): an alarm per step, each step a few
 * databases migrated side by side, the next alarm at once while there is more. Being one object,
 * its steps never overlap; its storage holds only the rollout it is driving, so a restart resumes it.
 */
export class MigrationRunner extends DurableObject<Env> {
  /** Drives `rollout` from now on (a new one, or one resumed). */
  async run(rollout: string): Promise<void> {
    await this.ctx.storage.put("rollout", rollout);
    await this.ctx.storage.setAlarm(Date.now());
  }

  override async alarm(): Promise<void> {
    const rollout = await this.ctx.storage.get<string>("rollout");
    if (!rollout) return;
    try {
      if (await stepRollout(this.env, rollout)) await this.ctx.storage.setAlarm(Date.now());
      else await this.ctx.storage.delete("rollout");
    } catch (err) {
      createLogger({ component: "migration-runner" }).error("migrations.step_failed", { ...errorFields(err), rollout_id: rollout });
      await this.ctx.storage.setAlarm(Date.now() + RETRY_MS);
    }
  }
}
