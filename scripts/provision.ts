// Adds tenant databases to the pool ahead of signups.
//   npm run db:provision -- --count 20            local: declares 20 more bindings in wrangler.toml
//   npm run db:provision -- --count 20 --remote   creates 20 D1 databases through the Cloudflare API, then declares them
//   npm run db:provision -- --total 500 …         as many as bring this jurisdiction's bindings to 500 (rerun to resume)
//   … --jurisdiction eu                           in the EU jurisdiction, bound as TENANT_DB_EU_NNNN (their own pool)
//   … --config wrangler.s2.toml                   for another shard's Worker (its numbers start at 5001, 10001, …)
//   … --concurrency 8                             databases created at once (--remote)
// --remote needs CLOUDFLARE_API_TOKEN (D1 edit) and CLOUDFLARE_ACCOUNT_ID; CLOUDFLARE_API_BASE_URL
// overrides the API's address, as for wrangler. An interrupted run is resumed by running it again:
// the names it would create are looked up first, and one that exists is declared, not created twice.
// Afterwards: deploy, and `POST /v1/platform/databases/sync` migrates and registers them.
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { eachLimit, tenantBindings } from "./wrangler-config.ts";

const END = "# END tenant databases";
/** Binding numbers per shard: shard sN's databases are numbered from (N-1)·5000 + 1, so names never collide across shards. */
const PER_SHARD = 5000;
const { values } = parseArgs({
  options: {
    count: { type: "string" },
    total: { type: "string" },
    remote: { type: "boolean", default: false },
    jurisdiction: { type: "string", default: "default" },
    config: { type: "string", default: "wrangler.toml" },
    concurrency: { type: "string", default: "8" },
  },
});
if (values.jurisdiction !== "default" && values.jurisdiction !== "eu") throw new Error("--jurisdiction takes default or eu");
const eu = values.jurisdiction === "eu";
const prefix = eu ? "TENANT_DB_EU_" : "TENANT_DB_";
const wanted = (flag: "count" | "total") => {
  const n = Number(values[flag]);
  if (!Number.isInteger(n) || n < 0 || n > 4500) throw new Error(`--${flag} takes a whole number up to 4500`);
  return n;
};
const concurrency = Number(values.concurrency);
if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 32) throw new Error("--concurrency takes a whole number from 1 to 32");

const toml = readFileSync(values.config, "utf8");
if (!toml.includes(END)) throw new Error(`${values.config} lacks the "${END}" marker`);
const shard = /^SHARD\s*=\s*"s(\d+)"/m.exec(toml)?.[1] ?? "1";
const base = (Number(shard) - 1) * PER_SHARD;
const existing = tenantBindings(values.config);
const declared = new Set(existing.filter((b) => (eu ? b.startsWith(prefix) : !b.startsWith("TENANT_DB_EU_"))).map((b) => Number(b.slice(prefix.length))));
// --total is what an interrupted run is resumed with: the same command again makes only what is missing.
const count = values.total !== undefined ? Math.max(0, wanted("total") - declared.size) : values.count !== undefined ? wanted("count") : 1;
// A Worker binds about 5,000 resources at most; past that, tenants go on another shard (README, "Shards").
if (existing.length + count > 4500) throw new Error(`${existing.length} tenant databases are bound to this Worker; ${count} more would pass the per-Worker binding limit — provision a new shard (README, "Shards")`);

// The first `count` numbers of this shard not declared yet: gaps first, so a run interrupted with
// databases made side by side (a later one declared, an earlier one not) fills them on the next run.
const planned: { binding: string; name: string; n: string }[] = [];
for (let k = base + 1; planned.length < count; k++) {
  if (declared.has(k)) continue;
  const n = String(k).padStart(4, "0");
  planned.push({ binding: `${prefix}${n}`, name: eu ? `tessera-tenant-eu-${n}` : `tessera-tenant-${n}`, n });
}

/** The Cloudflare API, as the D1 endpoints answer: `{success, errors, result, result_info}`. */
function cloudflare() {
  const token = process.env.CLOUDFLARE_API_TOKEN;
  const account = process.env.CLOUDFLARE_ACCOUNT_ID;
  if (!token || !account) throw new Error("--remote needs CLOUDFLARE_API_TOKEN (with D1 edit) and CLOUDFLARE_ACCOUNT_ID");
  const root = `${(process.env.CLOUDFLARE_API_BASE_URL ?? "https://api.cloudflare.com/client/v4").replace(/\/$/, "")}/accounts/${account}/d1/database`;
  return async function request<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<{ result: T; result_info?: { page: number; total_pages?: number } }> {
    for (let attempt = 1; ; attempt++) {
      const res = await fetch(`${root}${path}`, {
        method: init.method ?? "GET",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
      });
      // Rate limited or the API's own trouble: wait (as told, else a growing pause) and ask again.
      if ((res.status === 429 || res.status >= 500) && attempt < 6) {
        const wait = Number(res.headers.get("retry-after")) * 1000 || 250 * 2 ** attempt;
        await new Promise((r) => setTimeout(r, wait));
        continue;
      }
      const body = (await res.json().catch(() => ({}))) as { success?: boolean; errors?: { message: string }[]; result: T; result_info?: { page: number; total_pages?: number } };
      if (!res.ok || body.success === false) throw new Error(`Cloudflare API ${init.method ?? "GET"} ${path}: ${res.status} ${body.errors?.map((e) => e.message).join("; ") ?? ""}`);
      return body;
    }
  };
}

/** The account's databases named like the ones planned (an earlier, interrupted run's), by name. */
async function existingRemote(api: ReturnType<typeof cloudflare>): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  const like = eu ? "tessera-tenant-eu-" : "tessera-tenant-";
  for (let page = 1; ; page++) {
    const { result, result_info } = await api<{ uuid: string; name: string }[]>(`?name=${encodeURIComponent(like)}&per_page=100&page=${page}`);
    for (const db of result) found.set(db.name, db.uuid);
    if (result.length < 100 || (result_info?.total_pages !== undefined && page >= result_info.total_pages)) return found;
  }
}

const api = values.remote ? cloudflare() : undefined;
const already = api ? await existingRemote(api) : new Map<string, string>();
let done = 0;
let reused = 0;
await eachLimit(planned, values.remote ? concurrency : 1, async ({ binding, name, n }) => {
  let id = `00000000-0000-4000-${eu ? "8e00" : "8000"}-${n.padStart(12, "0")}`;
  if (api) {
    const known = already.get(name);
    if (known) reused++;
    id = known ?? (await api<{ uuid: string }>("", { method: "POST", body: { name, ...(eu ? { jurisdiction: "eu" } : {}) } })).result.uuid;
  }
  const block = `[[d1_databases]]\nbinding = "${binding}"\ndatabase_name = "${name}"\ndatabase_id = "${id}"\nmigrations_dir = "migrations/tenant"\n`;
  // Written after every database (one write at a time: this callback does not yield in between), so
  // an interrupted run leaves the config declaring exactly what exists, and the next run goes on.
  writeFileSync(values.config, readFileSync(values.config, "utf8").replace(END, `${block}${END}`));
  console.log(`[${++done}/${count}] ${binding} → ${name}${api ? ` (${id}${already.has(name) ? ", found from an earlier run" : ""})` : " (local)"}`);
});
console.log(`\n${existing.length + count} tenant databases declared in ${values.config}${reused ? ` (${reused} found from an earlier run, not created again)` : ""}. Next: deploy, then POST /v1/platform/databases/sync${shard === "1" ? "" : `?shard=s${shard}`}`);
