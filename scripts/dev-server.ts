// `npm run dev` as a child process for the scripts that drive the platform from a browser (the
// console's e2e run and its benchmark): started on its own port, waited for, stopped with its tree;
// a workspace of the run's own, and the erasure of those earlier runs left.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";

/** A value from the .dev.vars `npm run dev` made. */
export const devVar = (name: string) => new RegExp(`^${name}='([^']+)'`, "m").exec(readFileSync(".dev.vars", "utf8"))![1]!;

export function startDev(port: number) {
  const dev: ChildProcess = spawn("npm", ["run", "dev", "--", "--port", String(port)], { stdio: ["ignore", "pipe", "pipe"], detached: true });
  let log = "";
  dev.stdout!.on("data", (b: Buffer) => (log += b.toString()));
  dev.stderr!.on("data", (b: Buffer) => (log += b.toString()));
  const stop = () => {
    try {
      process.kill(-dev.pid!, "SIGTERM");
    } catch {
      // already gone
    }
  };
  process.on("exit", stop);
  const ready = async () => {
    // A fresh clone migrates every local database first (a wrangler process each): minutes on a busy machine.
    for (let i = 0; i < 720; i++) {
      // The dev script prints its banner once the pool is registered and the demo tenant seeded.
      if (log.includes("Tessera is running")) return;
      if (dev.exitCode !== null) throw new Error(`npm run dev exited:\n${log}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(`npm run dev did not come up in 6 minutes:\n${log}`);
  };
  return { ready, stop };
}

const admin = () => ({ authorization: `Bearer ${devVar("PLATFORM_ADMIN_TOKEN")}`, "content-type": "application/json" });

/** Signs up a workspace on the platform host and moves it to `plan`; answers its owner's tokens. */
export async function makeWorkspace(platform: string, ws: { slug: string; name: string; email: string; password: string }, plan = "pro") {
  const res = await fetch(`${platform}/v1/signup`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ tenant: { name: ws.name, slug: ws.slug }, user: { email: ws.email, password: ws.password, name: "Workspace Owner" } }),
  });
  if (res.status !== 201) throw new Error(`workspace signup: ${res.status} ${await res.text()}`);
  const made = (await res.json()) as { tenant: { id: string }; user: { id: string; email: string; name: string }; access_token: string; refresh_token: string };
  await fetch(`${platform}/v1/platform/tenants/${made.tenant.id}/plan`, { method: "POST", headers: admin(), body: JSON.stringify({ plan }) });
  return made;
}

/**
 * Erases the workspaces whose slug starts with `prefix` (suspended, then erased through the operator
 * API) and waits for the jobs, so their databases go back to the local pool and repeated runs do not
 * use it up.
 */
export async function eraseWorkspaces(platform: string, prefix: string) {
  const listed = (await (await fetch(`${platform}/v1/platform/tenants?limit=100`, { headers: admin() })).json()) as { data: { id: string; slug: string; status: string }[] };
  const jobs: string[] = [];
  for (const t of listed.data.filter((t) => t.slug.startsWith(prefix) && (t.status === "active" || t.status === "suspended"))) {
    await fetch(`${platform}/v1/platform/tenants/${t.id}/suspend`, { method: "POST", headers: admin() });
    jobs.push(((await (await fetch(`${platform}/v1/platform/tenants/${t.id}/erase`, { method: "POST", headers: admin() })).json()) as { id: string }).id);
  }
  for (const id of jobs) {
    for (let i = 0; i < 120; i++) {
      const job = (await (await fetch(`${platform}/v1/erasures/${id}`, { headers: admin() })).json()) as { status: string };
      if (job.status === "completed") break;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
