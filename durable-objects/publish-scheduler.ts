import { DurableObject } from "cloudflare:workers";
import { eraseStorage } from "./erase";
import { queueDuePosts } from "../src/content/publishing";
import type { Env } from "../src/env";
import { createLogger, errorFields } from "../src/lib/log";

/** How soon a scheduler whose pass failed tries again. */
const RETRY_MS = 10_000;

/**
 * One per tenant: keeps an alarm at the tenant's next due post. At the alarm it queues every post
 * due by then for publication (claimed in the tenant's database, so a post is queued once) and sets
 * the alarm for the next one. Scheduling a post moves the alarm earlier when it is due sooner.
 */
export class PublishScheduler extends DurableObject<Env> {
  /** A post of `tenant` is due at `at` (ms): wake by then. */
  async due(tenant: { id: string; dbBinding: string }, at: number): Promise<void> {
    await this.ctx.storage.put("tenant", tenant);
    const alarm = await this.ctx.storage.getAlarm();
    if (alarm === null || at < alarm) await this.ctx.storage.setAlarm(at);
  }

  /** Deletes everything this object stores (its tenant, or the person it counts, is erased); answers whether it held anything. */
  erase(): Promise<boolean> {
    return eraseStorage(this.ctx.storage);
  }

  override async alarm(): Promise<void> {
    const tenant = await this.ctx.storage.get<{ id: string; dbBinding: string }>("tenant");
    if (!tenant) return;
    try {
      const { next } = await queueDuePosts(this.env, tenant, Date.now());
      if (next !== null) await this.ctx.storage.setAlarm(next);
    } catch (err) {
      createLogger({ component: "publish-scheduler" }).error("publishing.schedule_failed", { ...errorFields(err), tenant_id: tenant.id });
      await this.ctx.storage.setAlarm(Date.now() + RETRY_MS);
    }
  }
}
