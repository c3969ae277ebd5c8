// `npm run dev [-- --port N]`: the whole platform locally and offline (`--local`: the AI and
// Vectorize bindings are not proxied to Cloudflare; the local providers answer instead). Creates .dev.vars,
// migrates the control database, starts wrangler dev, lets the platform migrate its own tenant
// databases (new ones join the pool through sync; ones behind the newest schema get a rollout — so a
// start with nothing to apply costs one query, however many databases there are) and seeds the demo
// tenant, then prints how to reach it.
import { spawn } from "node:child_process";
import http from "node:http";
import { parseArgs } from "node:util";
import { ensureDevVars } from "./dev-vars.ts";
import { migrateControl } from "./migrate.ts";

/** New databases synced before the platform is ready; the rest after, in batches of SYNC_BATCH. */
const FIRST_SYNC = 32;
const SYNC_BATCH = 100;
const DEMO = { slug: "demo", name: "Demo Studio", email: "owner@demo.test", ownerName: "Demo Owner" };

const passthrough = process.argv.slice(2);
const { values } = parseArgs({ args: passthrough, options: { port: { type: "string", default: "8787" } }, strict: false });
const port = Number(values.port);
const base = `http://localhost:${port}`;

const vars = await ensureDevVars();
const started = performance.now();
await migrateControl("local");
const controlMigrated = performance.now();

const dev = spawn("wrangler", ["dev", "--local", "--port", String(port), ...passthrough.filter((a, i, all) => a !== "--port" && all[i - 1] !== "--port" && !a.startsWith("--port="))], {
  stdio: "inherit",
  env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
});
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => dev.kill(signal));
dev.on("exit", (code) => process.exit(code ?? 0));

await waitForHealth(`${base}/health`);
const answering = performance.now();
const admin = { authorization: `Bearer ${vars.PLATFORM_ADMIN_TOKEN}`, "content-type": "application/json" };
// Enough new databases for the next signups join the pool before the platform is ready; the rest
// join in the background after it (a start with hundreds of new databases is ready in seconds).
type Synced = { registered: string[]; unmigrated: string[]; errors: Record<string, string>; pool: { behind: number } };
const sync = async (limit: number, jurisdiction?: string): Promise<Synced> => {
  const query = `limit=${limit}${jurisdiction ? `&jurisdiction=${jurisdiction}` : ""}`;
  const synced = (await (await fetch(`${base}/v1/platform/databases/sync?${query}`, { method: "POST", headers: admin })).json()) as Synced;
  for (const [binding, error] of Object.entries(synced.errors ?? {})) console.warn(`  ${binding} could not be migrated: ${error}`);
  return synced;
};
// Each jurisdiction's pool gets some first, so a signup in either finds a database at once.
const firstEu = await sync(FIRST_SYNC / 4, "eu");
const synced = await sync(FIRST_SYNC, "default");
const firstCount = firstEu.registered.length + synced.registered.length;
if (firstCount) console.log(`  ${firstCount} tenant databases migrated and added to the pool`);
if (synced.pool.behind > 0) await rollOut(synced.pool.behind);
const signup = await fetch(`${base}/v1/signup`, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ tenant: { name: DEMO.name, slug: DEMO.slug }, user: { email: DEMO.email, password: vars.DEMO_OWNER_PASSWORD, name: DEMO.ownerName } }),
});
if (signup.status === 409) {
  // Node does not resolve *.localhost here: connect to localhost and name the tenant's host in the Host header.
  const status = await postJson(port, `${DEMO.slug}.localhost:${port}`, "/v1/auth/login", { email: DEMO.email, password: vars.DEMO_OWNER_PASSWORD });
  if (status !== 200) console.warn("\n  The demo tenant predates this .dev.vars, so its owner has an older password. Delete .wrangler/state to seed it again.");
} else if (signup.status !== 201) {
  console.error("demo signup failed:", signup.status, await signup.text());
}
const pool = (await (await fetch(`${base}/v1/platform/databases`, { headers: admin })).json()) as { free: number; registered: number };

console.log(`
  Tessera is running (every binding local, AI provider: local)
  platform host   ${base}            (signup, /v1/platform/*, /docs, /openapi.json)
  demo tenant     http://${DEMO.slug}.localhost:${port}
  demo owner      ${DEMO.email} / ${vars.DEMO_OWNER_PASSWORD}   (DEMO_OWNER_PASSWORD in .dev.vars)
  platform admin  Bearer token PLATFORM_ADMIN_TOKEN in .dev.vars
  tenant databases ${pool.free} free of ${pool.registered} (npm run db:provision adds more)
  ready in ${((performance.now() - started) / 1000).toFixed(1)} s (control database ${seconds(controlMigrated - started)}, wrangler dev answering ${seconds(answering - controlMigrated)}, pool and demo ${seconds(performance.now() - answering)})

  curl -s http://${DEMO.slug}.localhost:${port}/v1/auth/login -H 'content-type: application/json' \\
    -d '{"email":"${DEMO.email}","password":"${vars.DEMO_OWNER_PASSWORD}"}'
`);

// The rest of the new databases, in the background: each batch registers what it migrated, so the
// pool grows while the platform serves. A sync that registers nothing (all in, or failing) ends it.
if (synced.registered.length === FIRST_SYNC || firstEu.registered.length === FIRST_SYNC / 4) {
  const since = performance.now();
  let joined = 0;
  for (;;) {
    const more = await sync(SYNC_BATCH);
    joined += more.registered.length;
    if (more.registered.length < SYNC_BATCH) break;
  }
  if (joined) console.log(`  ${joined} more tenant databases joined the pool in the background (${((performance.now() - since) / 1000).toFixed(1)} s)`);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Rolls the newest schema out over the databases behind it, and waits for the rollout to end. */
async function rollOut(behind: number): Promise<void> {
  console.log(`  ${behind} tenant databases are behind the newest schema: rolling it out`);
  const res = await fetch(`${base}/v1/platform/migrations`, { method: "POST", headers: admin, body: "{}" });
  const rollout = (await res.json()) as { id?: string; detail?: string };
  if (!rollout.id) return console.warn(`  the rollout did not start: ${rollout.detail ?? res.status}`);
  for (;;) {
    const now = (await (await fetch(`${base}/v1/platform/migrations/${rollout.id}`, { headers: admin })).json()) as { status: string; failure: { database: string; error: string } | null };
    if (now.status === "completed") return;
    if (now.status !== "running") return console.warn(`  the rollout ${now.status}${now.failure ? ` at ${now.failure.database}: ${now.failure.error}` : ""}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function waitForHealth(url: string): Promise<void> {
  for (let i = 0; i < 120; i++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`wrangler dev did not answer ${url} within 60 s`);
}

/** POSTs JSON to the local server with an explicit Host (a tenant's), answering the status. */
function postJson(port: number | string, host: string, path: string, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port: Number(port), path, method: "POST", headers: { host, "content-type": "application/json" } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}
