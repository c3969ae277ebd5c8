// The platform in one local workerd (Miniflare over the bundled Worker and wrangler.toml's local
// bindings), migrated, its pool registered and one tenant signed up: what the benchmark and the
// fuzzer drive from Node, without a wrangler dev process per run.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Miniflare, type WorkerOptions } from "miniflare";
import { unstable_getMiniflareWorkerOptions, unstable_splitSqlQuery } from "wrangler";
import { randomBytes } from "node:crypto";
import { newSigningKey } from "./dev-vars.ts";
import { wrangler } from "./wrangler-config.ts";
import { shardScript } from "../src/shards/names.ts";

export { shardBinding } from "../src/shards/names.ts";

/** Bundles the Worker as `wrangler deploy` would, into `outdir` (inside the project: workerd names modules relative to it). */
export async function bundleWorker(outdir: string, config = "wrangler.toml"): Promise<void> {
  await wrangler(["deploy", "--dry-run", "--config", config, "--outdir", outdir], { quiet: true });
}

type Options = WorkerOptions & { compatibilityDate?: string; d1Databases?: Record<string, string> };

/** wrangler.toml's bindings for Miniflare, without Workers AI and Vectorize (no local simulation; the local providers answer). */
function wranglerOptions(): Options {
  const { workerOptions } = unstable_getMiniflareWorkerOptions("wrangler.toml");
  // The bundle is one module, so wrangler's module rules do not apply.
  const { ai: _ai, vectorize: _vectorize, modulesRules: _rules, ...options } = workerOptions as typeof workerOptions & { ai?: unknown; vectorize?: unknown };
  return options as Options;
}

/** wrangler.toml's options and bindings, with fresh secrets and an admin token, for the first shard's Worker. */
export async function appWorkerOptions() {
  const options = wranglerOptions();
  const adminToken = `pat_local_${crypto.randomUUID()}`;
  const bindings = { ...(options.bindings ?? {}), JWT_PRIVATE_KEY: await newSigningKey(), PLATFORM_ADMIN_TOKEN: adminToken, SECRETS_KEY: randomBytes(32).toString("base64"), LOCAL_AI_WORD_DELAY_MS: "0" };
  return { options, bindings, adminToken };
}

/** Where `npm run build:shard` writes the Worker's bundle for another shard. */
export const SHARD_BUNDLE = "dist/shard/index.js";

/**
 * Another shard's Worker, run locally beside the first: the same code bundled, with wrangler.toml's
 * bindings except what makes it another shard — its name, `databases` tenant databases numbered from
 * `first` (binding names are unique across shards: the pool is keyed by them), and every queue renamed
 * `tessera-{shard}-…` with its consumer. The control database (by `controlDatabaseId`), KV and R2 are
 * the first shard's, by id; its Durable Objects are its own. No static assets: the router serves them.
 */
export function shardWorkerOptions(shard: string, opts: { first: number; databases: number; controlDatabaseId: string; bindings: Record<string, string>; scriptPath?: string }): WorkerOptions {
  const scriptPath = opts.scriptPath ?? SHARD_BUNDLE;
  if (!existsSync(scriptPath)) throw new Error(`${scriptPath} is missing: run \`npm run build:shard\` (npm test does)`);
  const w = wranglerOptions();
  const rename = (queue: string) => queue.replace(/^tessera-/, `${shardScript(shard)}-`);
  const queueProducers = {
    ...Object.fromEntries(Object.entries((w.queueProducers ?? {}) as Record<string, { queueName: string }>).map(([b, q]) => [b, { ...q, queueName: rename(q.queueName) }])),
    // A person's erasure runs on the router (it spans every shard).
    ROUTER_COMPLIANCE_QUEUE: { queueName: "tessera-compliance" },
  };
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
    scriptPath,
    compatibilityDate: w.compatibilityDate,
    compatibilityFlags: w.compatibilityFlags,
    bindings: { ...w.bindings, ...opts.bindings, SHARD: shard },
    d1Databases,
    kvNamespaces: w.kvNamespaces,
    r2Buckets: w.r2Buckets,
    durableObjects: w.durableObjects,
    queueProducers,
    queueConsumers,
  };
}

/**
 * Bundles the Worker into `outdir` and runs it alone in a local workerd with wrangler.toml's local
 * bindings (plus `extraDatabases`), its log lines dropped. Answers Miniflare and the options it ran with.
 */
export async function startPlatform(outdir: string, extraDatabases: Record<string, string> = {}) {
  await bundleWorker(outdir);
  const { options, bindings, adminToken } = await appWorkerOptions();
  options.d1Databases = { ...options.d1Databases, ...extraDatabases };
  const mf = new Miniflare({
    workers: [{ ...(options as object), name: "tessera", modules: true, scriptPath: join(outdir, "index.js"), bindings }],
    handleRuntimeStdio: (stdout: NodeJS.ReadableStream, stderr: NodeJS.ReadableStream) => {
      stdout.resume();
      stderr.resume();
    },
  });
  await mf.ready;
  return { mf, options, adminToken };
}

/** Applies a directory of migrations to one database from Node, as wrangler would (the control database; floors and benchmarks). */
export async function migrate(mf: Miniflare, binding: string, dir: string, files?: (names: string[]) => string[]) {
  const db = await mf.getD1Database(binding, "tessera");
  await db.exec("CREATE TABLE IF NOT EXISTS d1_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)");
  const names = readdirSync(dir)
    .filter((f) => f.endsWith(".sql"))
    .sort();
  for (const file of files ? files(names) : names) {
    const statements = unstable_splitSqlQuery(readFileSync(join(dir, file), "utf8").replaceAll("--> statement-breakpoint", ""));
    await db.batch([...statements.map((s) => db.prepare(s)), db.prepare("INSERT INTO d1_migrations (name) VALUES (?)").bind(file)]);
  }
}

/** A JSON call through Miniflare; throws on a non-2xx answer. */
export function apiClient(mf: Miniflare) {
  return async (url: string, init: RequestInit & { token?: string } = {}) => {
    const headers = new Headers(init.headers);
    if (init.token) headers.set("authorization", `Bearer ${init.token}`);
    if (init.body) headers.set("content-type", "application/json");
    const res = await mf.dispatchFetch(url, { ...init, headers } as never);
    const body = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`${init.method ?? "GET"} ${url}: ${res.status} ${JSON.stringify(body)}`);
    return body;
  };
}

/**
 * Migrates every database, registers the pool, and signs up tenant `slug` on a plan whose limits
 * the load cannot reach (so limits are exercised admitting, never refusing).
 */
export async function preparePlatform(mf: Miniflare, adminToken: string, slug: string) {
  await migrate(mf, "CONTROL_DB", "migrations/control");
  // The platform migrates its tenant databases itself as they join the pool.
  const api = apiClient(mf);
  await api("http://localhost/v1/platform/databases/sync", { method: "POST", token: adminToken });
  await (await mf.getD1Database("CONTROL_DB", "tessera"))
    .prepare("INSERT INTO plans (id, name, requests_per_minute, member_requests_per_minute, monthly_tokens, seats, projects, storage_bytes) VALUES ('unlimited', 'Unlimited', 100000000, 100000000, 1000000000000, 1000, 1000, 10000000000000)")
    .run();
  const signup = await api("http://localhost/v1/signup", {
    method: "POST",
    body: JSON.stringify({ tenant: { name: slug, slug }, user: { email: `${slug}@example.test`, password: `${slug} password 1`, name: slug } }),
  });
  const tenantId = (signup.tenant as { id: string }).id;
  await api(`http://localhost/v1/platform/tenants/${tenantId}/plan`, { method: "POST", token: adminToken, body: JSON.stringify({ plan: "unlimited" }) });
  return { api, tenantId, token: signup.access_token as string, email: `${slug}@example.test`, password: `${slug} password 1` };
}
