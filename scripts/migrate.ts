// Applies migrations/control to the control database and migrations/tenant to every tenant
// database in wrangler.toml. `--local` (default) targets wrangler dev's local state,
// `--remote` the Cloudflare databases. Usage: npm run db:migrate [-- --remote] [--concurrency N]
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { eachLimit, tenantBindings, wrangler } from "./wrangler-config.ts";

/**
 * Applies the control database's pending migrations. Locally, the pending ones go in one `wrangler d1
 * execute` (one batch, with their `d1_migrations` rows, so wrangler's own bookkeeping agrees), where
 * `migrations apply` starts a local runtime per migration: a first `npm run dev` spent 15 s on it.
 */
export async function migrateControl(target: "local" | "remote"): Promise<void> {
  if (target === "remote") {
    await wrangler(["d1", "migrations", "apply", "CONTROL_DB", "--remote"], { quiet: true });
    return console.log("[control] CONTROL_DB migrated (remote)");
  }
  const listed = await wrangler(["d1", "migrations", "list", "CONTROL_DB", "--local"], { quiet: true });
  const pending = [...new Set(listed.match(/\b\d{4}_[\w-]+\.sql\b/g) ?? [])].sort();
  if (!pending.length) return;
  const sql = [
    "CREATE TABLE IF NOT EXISTS d1_migrations(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL);",
    ...pending.map((name) => `${readFileSync(join("migrations/control", name), "utf8").replaceAll("--> statement-breakpoint", "")}\nINSERT INTO d1_migrations (name) VALUES ('${name}');`),
  ].join("\n");
  const file = join(mkdtempSync(join(tmpdir(), "tessera-control-")), "pending.sql");
  writeFileSync(file, sql);
  await wrangler(["d1", "execute", "CONTROL_DB", "--local", "--file", file, "-y"], { quiet: true });
  console.log(`[control] CONTROL_DB: ${pending.length} migrations applied (local)`);
}

/**
 * Applies every pending migration, one wrangler process per database; prints one progress line per
 * database. For databases the platform cannot reach yet; a running platform migrates its own pool
 * (`POST /v1/platform/databases/sync`, `POST /v1/platform/migrations`), which is what `npm run dev` uses.
 */
export async function migrateAll(target: "local" | "remote", concurrency = 4): Promise<void> {
  const flag = `--${target}`;
  await migrateControl(target);
  const bindings = tenantBindings();
  let done = 0;
  await eachLimit(bindings, concurrency, async (binding) => {
    await wrangler(["d1", "migrations", "apply", binding, flag], { quiet: true });
    done++;
    console.log(`[${done}/${bindings.length}] ${binding} migrated (${target})`);
  });
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { remote: { type: "boolean", default: false }, local: { type: "boolean", default: false }, concurrency: { type: "string", default: "4" } } });
  await migrateAll(values.remote ? "remote" : "local", Number(values.concurrency));
}
