import { z } from "@hono/zod-openapi";
import { FIRST_SHARD, SHARD_NAME } from "./shards/names";

/**
 * Every binding, var and secret the Worker has, as `npm run types` (wrangler types) generates them
 * from wrangler.toml and config/secrets.env into src/worker-env.d.ts — never written by hand, and
 * checked against the config by `npm run typecheck`. Tenant databases are named `TENANT_DB_NNNN` (`TENANT_DB_EU_NNNN` in the EU);
 * a deploy may bind more than the config lists, so any such name may be one. Vars are read through
 * `loadConfig`, which checks them.
 */
export type Env = Omit<WorkerEnv, "JWT_PREVIOUS_PUBLIC_KEYS" | "LOCAL_AI_WORD_DELAY_MS" | "LOCAL_VECTOR_DELAY_MS" | "WEBHOOK_TIMEOUT_MS" | "COMPLIANCE_SLICE_MS"> & {
  /** Optional: public JWKs still accepted after a key rotation. */
  JWT_PREVIOUS_PUBLIC_KEYS?: string;
  /** Optional: milliseconds between the local model's words. */
  LOCAL_AI_WORD_DELAY_MS?: string;
  /** Optional: milliseconds before a local vector index write is searchable. */
  LOCAL_VECTOR_DELAY_MS?: string;
  /** Optional: milliseconds an erasure works per queue message. */
  COMPLIANCE_SLICE_MS?: string;
  /** Optional: milliseconds a webhook attempt may take (15 s unless shortened, as the tests do). */
  WEBHOOK_TIMEOUT_MS?: string;
  [tenantDatabase: `TENANT_DB_${string}`]: D1Database;
  /** On a router: a service binding to another shard's Worker (`SHARD_S2` → shard `s2`); see src/shards/. */
  [shard: `SHARD_${string}`]: Fetcher;
  /** On a router in production: the Workers for Platforms dispatch namespace holding the other shards' Workers. */
  DISPATCHER?: DispatchNamespace;
  /** On a shard that is not the router: the router's compliance queue, where a person's erasure runs (it spans every shard). */
  ROUTER_COMPLIANCE_QUEUE?: Queue;
  /** Optional: which shard this Worker is (`s1` unless set). */
  SHARD?: string;
};

const ConfigSchema = z.object({
  BASE_DOMAIN: z.string().min(1).regex(/^[a-z0-9.-]+$/, "a lowercase host name"),
  AI_PROVIDER: z.enum(["local", "cloudflare"]),
  /** How an EU tenant's Durable Objects are placed: restricted by Cloudflare, or given ids of their own locally (src/tenants/residency.ts). */
  RESIDENCY: z.enum(["simulated", "cloudflare"]),
  VECTOR_PROVIDER: z.enum(["local", "cloudflare"]),
  TENANT_CACHE_TTL_SECONDS: z.coerce.number().int().min(0).max(300),
  RATE_LIMITS: z.enum(["on", "off"]),
  /** Where posts are published: "local" is the sandbox (each social network's own publisher comes with its credentials). */
  PUBLISHER: z.enum(["local"]),
  /** AES-256-GCM key (base64 of 32 bytes) that encrypts connected channel accounts' credentials at rest. */
  SECRETS_KEY: z
    .string({ error: "missing: run `npm run dev` once to create .dev.vars, or `wrangler secret put SECRETS_KEY`" })
    .refine((v) => {
      try {
        return atob(v).length === 32;
      } catch {
        return false;
      }
    }, "must be the base64 of 32 random bytes"),
  JWT_PRIVATE_KEY: z
    .string({ error: "missing: run `npm run dev` once to create .dev.vars, or `wrangler secret put JWT_PRIVATE_KEY`" })
    .refine((v) => {
      try {
        return typeof JSON.parse(v) === "object";
      } catch {
        return false;
      }
    }, "must be an ES256 private JWK as JSON"),
  PLATFORM_ADMIN_TOKEN: z.string().min(24, "at least 24 characters"),
  /** Milliseconds between the local model's words (streaming you can watch; 0 in benchmarks). */
  LOCAL_AI_WORD_DELAY_MS: z.coerce.number().int().min(0).max(5000).default(15),
  /** Milliseconds before a local vector index write is searchable (Vectorize is eventually consistent; 0 locally by default). */
  LOCAL_VECTOR_DELAY_MS: z.coerce.number().int().min(0).max(600_000).default(0),
  /** Milliseconds an erasure works before it queues its next slice (0: one step per message, as the resumption test does). */
  COMPLIANCE_SLICE_MS: z.coerce.number().int().min(0).max(600_000).default(20_000),
  /** Milliseconds a webhook attempt may take before it is abandoned: 15 s, shortened only by the tests' config. */
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(15_000).default(15_000),
  /** Free tenant databases below which the pool warns (a log line at signup, `low` in GET /v1/platform/databases). */
  POOL_LOW_WATER: z.coerce.number().int().min(0).max(100_000).default(10),
  /** The shard this Worker is: it binds that shard's tenant databases and serves their tenants (src/shards/). */
  SHARD: z.string().regex(SHARD_NAME, "s1, s2, …").default(FIRST_SHARD),
  /** JSON array of public JWKs still accepted after a key rotation. */
  JWT_PREVIOUS_PUBLIC_KEYS: z.string().optional(),
});

/** The checked vars and secrets. */
export type Config = z.infer<typeof ConfigSchema>;

let cached: { source: Env; config: Config } | undefined;

/** Validates vars and secrets once per isolate; a misconfigured deploy fails loudly on its first request. */
export function loadConfig(env: Env): Config {
  if (cached?.source === env) return cached.config;
  const parsed = ConfigSchema.safeParse(env);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new Error(`Invalid Worker configuration: ${detail}`);
  }
  cached = { source: env, config: parsed.data };
  return parsed.data;
}
