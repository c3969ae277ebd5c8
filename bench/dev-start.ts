// `npm run bench:dev`: `npm run dev`'s time to ready with 500 local tenant databases, scripted —
// a copy of the working tree (node_modules and the built console linked, not copied) with 492
// databases provisioned beside wrangler.toml's 8, then three starts: the first (every database new),
// the next (nothing to apply), and one after a new tenant migration. Each reads the "ready in" the
// dev script prints (from its first step to the demo tenant seeded).
import { execFileSync, spawn } from "node:child_process";
import { cpSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

const DATABASES = Number(process.env.DATABASES ?? 500);
const PORT = process.env.PORT ?? "8791";
const dir = resolve(".bench/dev-start");

rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const files = execFileSync("git", ["ls-files", "-co", "--exclude-standard"], { encoding: "utf8" }).split("\n").filter(Boolean);
for (const f of files) {
  if (f.startsWith(".bench/")) continue;
  mkdirSync(dirname(join(dir, f)), { recursive: true });
  cpSync(f, join(dir, f));
}
symlinkSync(resolve("node_modules"), join(dir, "node_modules"));
cpSync("dist/console", join(dir, "dist/console"), { recursive: true });
const run = (script: string, args: string[]) => execFileSync(process.execPath, [script, ...args], { cwd: dir, stdio: "ignore" });
run("scripts/provision.ts", ["--count", String(DATABASES - 8)]);

/**
 * Starts the dev script and answers its "ready in" seconds; stops it then, or — with `pool` — once
 * the new databases it left for after (in the background) have joined the pool, answering that too.
 */
function start(pool = false): Promise<{ ready: number; background: number | null }> {
  return new Promise((resolveReady, reject) => {
    const child = spawn(process.execPath, ["scripts/dev.ts", "--port", PORT], { cwd: dir, stdio: ["ignore", "pipe", "pipe"], detached: true });
    let out = "";
    const early = (code: number | null) => reject(new Error(`dev exited ${code} before it was ready:\n${out.slice(-2000)}`));
    const onData = (d: Buffer) => {
      out += d;
      const m = /ready in ([\d.]+) s/.exec(out);
      if (!m) return;
      const joined = /joined the pool in the background \(([\d.]+) s\)/.exec(out);
      if (pool && !joined) return;
      child.stdout.off("data", onData);
      child.off("exit", early);
      console.log(`  ${/ready in [^\n]*/.exec(out)![0]}`);
      child.once("exit", () => resolveReady({ ready: Number(m[1]), background: joined ? Number(joined[1]) : null }));
      process.kill(-child.pid!, "SIGINT");
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", (d) => (out += d));
    child.once("exit", early);
  });
}

console.log(`${DATABASES} local tenant databases in ${dir}`);
const first = await start(true);
const next = await start();
writeFileSync(join(dir, "migrations/tenant/0099_bench_note.sql"), "CREATE TABLE `bench_notes` (`id` text PRIMARY KEY NOT NULL);\n");
run("scripts/bundle-migrations.ts", []);
const afterMigration = await start();
rmSync(dir, { recursive: true, force: true });

console.log(`\n| start, ${DATABASES} databases | ready in | target |`);
console.log("|---|---:|---:|");
console.log(`| first: every database new (the first 40 synced before ready) | ${first.ready.toFixed(1)} s | < 30 s |`);
console.log(`| … the other ${DATABASES - 40} joining the pool in the background, after ready | ${first.background?.toFixed(1) ?? "—"} s | — |`);
console.log(`| next: nothing to apply | ${next.ready.toFixed(1)} s | < 30 s |`);
console.log(`| after one new tenant migration (rolled out over all) | ${afterMigration.ready.toFixed(1)} s | < 30 s |`);
