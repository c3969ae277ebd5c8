// Applies migrations/control to the control database and migrations/tenant to every tenant
// database in wrangler.toml. `--local` (default) targets wrangler dev's local state,
// `--remote` the Cloudflare databases. Usage: npm run db:migrate [-- --remote] [--concurrency N]
import { parseArgs } from "node:util";
import { eachLimit, tenantBindings, wrangler } from "./wrangler-config.ts";

/** Applies the control database's pending migrations. */
export async function migrateControl(target: "local" | "remote"): Promise<void> {
  await wrangler(["d1", "migrations", "apply", "CONTROL_DB", `--${target}`], { quiet: true });
  console.log(`[control] CONTROL_DB migrated (${target})`);
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
