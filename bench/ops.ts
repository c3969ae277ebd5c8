// `npm run bench:ops`: tenant schema migrations at 500 databases, in the platform (the bundled
// migrations through the bindings, as sync and rollouts apply them) against the previous path (one
// `wrangler d1 migrations apply` process per database, four at a time) on a sample, side by side
// in one run. The platform runs in one local workerd (Miniflare over the bundled Worker) with 500
// tenant database bindings; wrangler's path runs against a persisted local state of its own.
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { apiClient, migrate, startPlatform } from "../scripts/local-platform.ts";
import { eachLimit, tenantBindings, wrangler } from "../scripts/wrangler-config.ts";

const DATABASES = Number(process.env.DATABASES ?? 500);
const SAMPLE = Number(process.env.SAMPLE ?? 16);
const PLATFORM = "http://localhost";
const seconds = (ms: number) => (ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(1)} s`);
const time = async (work: () => Promise<unknown>) => {
  const started = performance.now();
  await work();
  return performance.now() - started;
};

/** The platform with `DATABASES` tenant database bindings (wrangler.toml's and more), its control database migrated. */
async function platform(tag: string) {
  const declared = tenantBindings();
  const extra = Object.fromEntries(Array.from({ length: DATABASES - declared.length }, (_, i) => [`TENANT_DB_${String(declared.length + i + 1).padStart(4, "0")}`, `ops-${tag}-${i}`]));
  const { mf, adminToken } = await startPlatform(".bench/ops-dist", extra);
  await migrate(mf, "CONTROL_DB", "migrations/control");
  const api = apiClient(mf);
  const admin = (path: string, init: RequestInit = {}) => api(`${PLATFORM}${path}`, { ...init, token: adminToken });
  return { mf, admin, bindings: [...declared, ...Object.keys(extra)] };
}

console.log(`${DATABASES} tenant databases; bundling the Worker…`);

// 1. Every database new: sync migrates all of them through every migration and registers them; then
//    the same sync with nothing to do (what each later `npm run dev` start pays).
const fresh = await platform("fresh");
const syncAll = await time(() => fresh.admin("/v1/platform/databases/sync", { method: "POST" }));
const pool = (await fresh.admin("/v1/platform/databases")) as { registered: number; behind: number };
if (pool.registered !== DATABASES || pool.behind !== 0) throw new Error(`sync left ${JSON.stringify(pool)}`);
const syncNothing = await time(async () => {
  await fresh.admin("/v1/platform/databases/sync", { method: "POST" });
  await fresh.admin("/v1/platform/databases");
});
await fresh.mf.dispose();

// 2. One new migration over every database: each brought to the one before the newest from Node,
//    registered there, then a rollout to the newest, timed from the request to its completion.
const behind = await platform("behind");
const names = (all: string[]) => all.slice(0, -1);
const control = await behind.mf.getD1Database("CONTROL_DB", "tessera");
await eachLimit(behind.bindings, 16, async (binding) => {
  await migrate(behind.mf, binding, "migrations/tenant", names);
});
const previous = names(readdirSync("migrations/tenant").filter((f) => f.endsWith(".sql")).sort()).at(-1)!;
for (let i = 0; i < behind.bindings.length; i += 50) {
  const slice = behind.bindings.slice(i, i + 50);
  await control.batch(slice.map((b) => control.prepare("INSERT INTO tenant_databases (binding, migration) VALUES (?, ?)").bind(b, previous)));
}
let rollout: { id: string; status: string; progress: { done: number; failed: number } } | undefined;
const rolloutMs = await time(async () => {
  rollout = (await behind.admin("/v1/platform/migrations", { method: "POST", body: "{}" })) as typeof rollout;
  while (rollout!.status === "running") {
    await new Promise((r) => setTimeout(r, 50));
    rollout = (await behind.admin(`/v1/platform/migrations/${rollout!.id}`)) as typeof rollout;
  }
});
if (rollout!.status !== "completed" || rollout!.progress.done !== DATABASES) throw new Error(`rollout ended ${JSON.stringify(rollout)}`);
await behind.mf.dispose();

// 3. The previous path on a sample: one wrangler process per database, four at a time, first with
//    every migration to apply, then with nothing (what every start paid again).
const state = mkdtempSync(join(tmpdir(), "tessera-ops-"));
const sample = tenantBindings().slice(0, Math.min(SAMPLE, tenantBindings().length));
// wrangler.toml declares 8 databases: the sample repeats them over fresh persisted states.
const runs = Array.from({ length: SAMPLE }, (_, i) => ({ binding: sample[i % sample.length]!, dir: join(state, String(Math.floor(i / sample.length))) }));
const wranglerApply = () => eachLimit(runs, 4, async ({ binding, dir }) => void (await wrangler(["d1", "migrations", "apply", binding, "--local", "--persist-to", dir], { quiet: true })));
const wranglerAll = await time(wranglerApply);
const wranglerNothing = await time(wranglerApply);
rmSync(state, { recursive: true, force: true });
const per = (ms: number) => (ms / SAMPLE) * DATABASES;

console.log(`
| measure, ${DATABASES} databases | in the platform | one wrangler process per database (×${DATABASES / SAMPLE} of a ${SAMPLE}-database sample) | × wrangler |
|---|---:|---:|---:|
| every migration on every database (new databases joining the pool: sync) | ${seconds(syncAll)} | ${seconds(per(wranglerAll))} | ${(syncAll / per(wranglerAll)).toFixed(3)} |
| one new migration on every database (a rollout, request to completion) | ${seconds(rolloutMs)} | — | — |
| nothing to apply (each later \`npm run dev\` start: sync + pool read) | ${seconds(syncNothing)} | ${seconds(per(wranglerNothing))} | ${(syncNothing / per(wranglerNothing)).toFixed(4)} |
`);
