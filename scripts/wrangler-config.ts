import { readFileSync } from "node:fs";
import { spawn } from "node:child_process";

/** The tenant database bindings declared in wrangler.toml, in order. */
export function tenantBindings(configPath = "wrangler.toml"): string[] {
  const toml = readFileSync(configPath, "utf8");
  return [...toml.matchAll(/^binding\s*=\s*"(TENANT_DB_(?:EU_)?\d{4,})"/gm)].map((m) => m[1]!);
}

/** Runs wrangler with these arguments; resolves with its output, rejects on a non-zero exit. */
export function wrangler(args: string[], opts: { quiet?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("wrangler", args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, WRANGLER_SEND_METRICS: "false" } });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      if (!opts.quiet) process.stdout.write(d);
    });
    child.stderr.on("data", (d) => {
      out += d;
      if (!opts.quiet) process.stderr.write(d);
    });
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`wrangler ${args.join(" ")} exited ${code}\n${out}`))));
  });
}

/** Runs `fn` over `items` with at most `limit` at a time. */
export async function eachLimit<T>(items: T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  });
  await Promise.all(workers);
}
