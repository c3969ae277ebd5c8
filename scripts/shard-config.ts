// Writes the wrangler config of another shard's Worker from wrangler.toml (README, "Shards"):
//   npm run shard:config -- --shard s2        → wrangler.s2.toml
// The same Worker with its own name (tessera-s2), `SHARD = "s2"`, its own queues (tessera-s2-…),
// no static assets (the router serves the console) and no tenant databases yet: provision them with
// `npm run db:provision -- --config wrangler.s2.toml --total N --remote`, numbered from 5001.
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { FIRST_SHARD, SHARD_NAME, shardScript } from "../src/shards/names.ts";

const { values } = parseArgs({ options: { shard: { type: "string" }, from: { type: "string", default: "wrangler.toml" }, out: { type: "string" } } });
const shard = values.shard ?? "";
if (!SHARD_NAME.test(shard) || shard === FIRST_SHARD) throw new Error("--shard takes s2, s3, …: s1 is wrangler.toml itself");
const name = shardScript(shard);
const out = values.out ?? `wrangler.${shard}.toml`;

let toml = readFileSync(values.from, "utf8");
const BEGIN = /^# BEGIN tenant databases.*$/m;
const END = "# END tenant databases";
if (!BEGIN.test(toml) || !toml.includes(END)) throw new Error(`${values.from} lacks the tenant database markers`);
toml = toml
  .replace(/^name = "tessera"$/m, `name = "${name}"`)
  // Every queue a shard produces to or consumes is its own: a queue has one consumer Worker.
  .replace(/^(queue|dead_letter_queue) = "tessera-/gm, `$1 = "${name}-`)
  // The router serves the console; a shard answers only what the router forwards.
  .replace(/^\[assets\]\n(?:(?!\[)[^\n]*\n)*/m, "")
  .replace(/^\[vars\]$/m, `[vars]\n# This Worker is shard ${shard}: it binds that shard's tenant databases and serves their tenants.\nSHARD = "${shard}"`)
  .replace(new RegExp(`(${BEGIN.source})[\\s\\S]*?${END}`, "m"), `$1\n${END}`)
  // A person's erasure spans every shard, so it runs on the router: a shard queues it there.
  .replace(BEGIN, (m) => `# A person's erasure runs on the router (it spans every shard): a shard queues it there.\n[[queues.producers]]\nbinding = "ROUTER_COMPLIANCE_QUEUE"\nqueue = "tessera-compliance"\n\n${m}`);
writeFileSync(out, `# Shard ${shard}'s Worker, written by \`npm run shard:config -- --shard ${shard}\` from ${values.from}.\n${toml}`);
console.log(`${out}: ${name}, its queues ${name}-…; next: npm run db:provision -- --config ${out} --total N --remote`);
