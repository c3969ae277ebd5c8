// Adds tenant databases to the pool ahead of signups.
//   npm run db:provision -- --count 20            local: declares 20 more bindings in wrangler.toml
//   npm run db:provision -- --count 20 --remote   creates 20 D1 databases on Cloudflare, then declares them
//   … --jurisdiction eu                           in the EU jurisdiction, bound as TENANT_DB_EU_NNNN (their own pool)
// Afterwards: `npm run db:migrate [-- --remote]`, deploy, and
// `POST /v1/platform/databases/sync` registers the migrated ones as free.
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { tenantBindings, wrangler } from "./wrangler-config.ts";

const END = "# END tenant databases";
const { values } = parseArgs({ options: { count: { type: "string", default: "1" }, remote: { type: "boolean", default: false }, jurisdiction: { type: "string", default: "default" }, config: { type: "string", default: "wrangler.toml" } } });
if (values.jurisdiction !== "default" && values.jurisdiction !== "eu") throw new Error("--jurisdiction takes default or eu");
const eu = values.jurisdiction === "eu";
const prefix = eu ? "TENANT_DB_EU_" : "TENANT_DB_";
const count = Number(values.count);
if (!Number.isInteger(count) || count < 1 || count > 1000) throw new Error("--count takes a whole number from 1 to 1000");

const existing = tenantBindings(values.config);
const highest = existing.filter((b) => (eu ? b.startsWith(prefix) : !b.startsWith("TENANT_DB_EU_"))).reduce((max, b) => Math.max(max, Number(b.slice(prefix.length))), 0);
// A Worker binds about 5,000 resources at most; past that, tenants need a second Worker (see README).
if (existing.length + count > 4500) throw new Error(`${existing.length} tenant databases are bound; ${count} more would pass the per-Worker binding limit`);

for (let i = 1; i <= count; i++) {
  const n = String(highest + i).padStart(4, "0");
  const binding = `${prefix}${n}`;
  const name = eu ? `tessera-tenant-eu-${n}` : `tessera-tenant-${n}`;
  let id = `00000000-0000-4000-${eu ? "8e00" : "8000"}-${n.padStart(12, "0")}`;
  if (values.remote) {
    const out = await wrangler(["d1", "create", name, ...(eu ? ["--jurisdiction", "eu"] : [])], { quiet: true });
    const m = /"?database_id"?\s*[:=]\s*"([0-9a-f-]{36})"/.exec(out);
    if (!m) throw new Error(`could not read the id of ${name} from wrangler:\n${out}`);
    id = m[1]!;
  }
  const block = `[[d1_databases]]\nbinding = "${binding}"\ndatabase_name = "${name}"\ndatabase_id = "${id}"\nmigrations_dir = "migrations/tenant"\n`;
  // Write after every database, so an interrupted run leaves wrangler.toml matching what exists.
  const toml = readFileSync(values.config, "utf8");
  if (!toml.includes(END)) throw new Error(`${values.config} lacks the "${END}" marker`);
  writeFileSync(values.config, toml.replace(END, `${block}${END}`));
  console.log(`[${i}/${count}] ${binding} → ${name}${values.remote ? ` (${id})` : " (local)"}`);
}
console.log(`\n${existing.length + count} tenant databases declared. Next: npm run db:migrate${values.remote ? " -- --remote" : ""}, deploy, then POST /v1/platform/databases/sync`);
