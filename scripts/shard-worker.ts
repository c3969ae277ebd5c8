// Another shard's Worker, run locally beside the first: the same code, bundled by wrangler
// (`npm run build:shard`), with wrangler.toml's bindings except what makes it another shard — its
// name, its own tenant databases and its own queues. The test pool (vitest.config.ts, project
// "shards") and `npm run bench:shards` run it, bound to the first shard as `SHARD_S2` and so on.
import { existsSync } from "node:fs";
import type { WorkerOptions } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { shardScript } from "../src/shards/names.ts";

/** Where `npm run build:shard` writes the Worker's bundle. */
export const SHARD_BUNDLE = "dist/shard/index.js";

export { shardBinding } from "../src/shards/names.ts";
/**
 * Miniflare options for shard `shard`'s Worker: `databases` tenant database bindings numbered from
 * `first` (binding names are unique across shards: the pool is keyed by them), the control
 * database, KV and R2 shared with the first shard by id, Durable Objects of its own, and every
 * queue renamed `tessera-{shard}-…` with its consumer.
 */
export function shardWorkerOptions(shard: string, opts: { first: number; databases: number; controlDatabaseId: string; bindings: Record<string, string> }): WorkerOptions {
  if (!existsSync(SHARD_BUNDLE)) throw new Error(`${SHARD_BUNDLE} is missing: run \`npm run build:shard\` (npm test does)`);
  const w = unstable_getMiniflareWorkerOptions("wrangler.toml").workerOptions as WorkerOptions;
  const rename = (queue: string) => queue.replace(/^tessera-/, `${shardScript(shard)}-`);
  const queueProducers = Object.fromEntries(Object.entries((w.queueProducers ?? {}) as Record<string, { queueName: string }>).map(([b, q]) => [b, { ...q, queueName: rename(q.queueName) }]));
  const queueConsumers = Object.fromEntries(
    Object.entries((w.queueConsumers ?? {}) as Record<string, { deadLetterQueue?: string }>).map(([q, c]) => [rename(q), { ...c, ...(c.deadLetterQueue ? { deadLetterQueue: rename(c.deadLetterQueue) } : {}) }]),
  );
  const d1Databases: Record<string, string> = { CONTROL_DB: opts.controlDatabaseId };
  for (let i = 0; i < opts.databases; i++) {
    const n = String(opts.first + i).padStart(4, "0");
    d1Databases[`TENANT_DB_${n}`] = `tessera-tenant-${n}`;
  }
  return {
    name: shardScript(shard),
    modules: true,
    scriptPath: SHARD_BUNDLE,
    compatibilityDate: w.compatibilityDate,
    compatibilityFlags: w.compatibilityFlags,
    // The vars (AI and vector providers local, as in dev), the secrets given, and which shard it is.
    bindings: { ...w.bindings, ...opts.bindings, SHARD: shard },
    d1Databases,
    kvNamespaces: w.kvNamespaces,
    r2Buckets: w.r2Buckets,
    durableObjects: w.durableObjects,
    queueProducers,
    queueConsumers,
  };
}
