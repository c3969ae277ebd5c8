import { z } from "@hono/zod-openapi";
import type { ConversationRoom } from "../durable-objects/conversation-room";
import type { RateLimiter } from "../durable-objects/rate-limiter";

/** Every binding the Worker has; `TENANT_DB_NNNN` are the per-tenant databases. */
export interface Env {
  CONTROL_DB: D1Database;
  TENANT_CACHE: KVNamespace;
  CONVERSATION_ROOM: DurableObjectNamespace<ConversationRoom>;
  RATE_LIMITER: DurableObjectNamespace<RateLimiter>;
  ARTIFACTS: R2Bucket;
  AI: Ai;
  VECTORIZE: VectorizeIndex;
  RUNS_QUEUE: Queue;
  WEBHOOKS_QUEUE: Queue;
  BASE_DOMAIN: string;
  AI_PROVIDER: string;
  VECTOR_PROVIDER: string;
  TENANT_CACHE_TTL_SECONDS: string;
  /** "on" everywhere that serves users; "off" only to measure what limiting costs. */
  RATE_LIMITS: string;
  /** Milliseconds between the local model's words (streaming you can watch; 0 in benchmarks). */
  LOCAL_AI_WORD_DELAY_MS?: string;
  /** ES256 private JWK (with `kid`) as JSON: signs access tokens. */
  JWT_PRIVATE_KEY: string;
  /** Optional JSON array of public JWKs still accepted after a key rotation. */
  JWT_PREVIOUS_PUBLIC_KEYS?: string;
  PLATFORM_ADMIN_TOKEN: string;
  [tenantDatabase: `TENANT_DB_${string}`]: D1Database;
}

const ConfigSchema = z.object({
  BASE_DOMAIN: z.string().min(1).regex(/^[a-z0-9.-]+$/, "a lowercase host name"),
  AI_PROVIDER: z.enum(["local", "cloudflare"]),
  VECTOR_PROVIDER: z.enum(["local", "cloudflare"]),
  TENANT_CACHE_TTL_SECONDS: z.coerce.number().int().min(0).max(300),
  RATE_LIMITS: z.enum(["on", "off"]),
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
