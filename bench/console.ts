// `npm run bench:console`: the console's dashboard (a signed-in workspace's projects page) loaded in
// Chromium, against a static page of the same size served by a bare Worker: bytes over the wire and
// time to interactive, the median of several loads of each, taken in turns. The app runs under
// `npm run dev` (wrangler dev, workerd); the bare Worker in Miniflare (workerd) beside it. The
// dashboard is interactive when its projects (here: none yet) are shown, which takes its two API
// calls; the static page when it has loaded.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { chromium, type Page } from "playwright-core";
import { eraseWorkspaces, makeWorkspace, startDev } from "../scripts/dev-server.ts";

const PORT = 8797;
const LOADS = Number(process.env.LOADS ?? 9);
const PLATFORM = `http://localhost:${PORT}`;
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

// The same bytes as the console's first load, as inert copies: its index.html (its tags pointing at
// the copies), its script inside a comment (same size and compressibility, nothing runs) and its
// stylesheet. Both sides are compressed the same way on the wire.
const dist = "dist/console";
const asset = (ext: string) => join(dist, "assets", readdirSync(join(dist, "assets")).find((f) => f.endsWith(ext))!);
const sizes = { html: statSync(join(dist, "index.html")).size, js: statSync(asset(".js")).size, css: statSync(asset(".css")).size };
const html = readFileSync(join(dist, "index.html"), "utf8").replace(/src="[^"]+\.js"/, 'src="/a.js"').replace(/href="[^"]+\.css"/, 'href="/a.css"');
const script = `/*${readFileSync(asset(".js"), "utf8").replaceAll("*/", "* /")}*/`;
const css = readFileSync(asset(".css"), "utf8");
const bare = new Miniflare({
  modules: true,
  script: `const pages = ${JSON.stringify({ "/": html, "/a.js": script, "/a.css": css })};
    const types = { "/": "text/html; charset=utf-8", "/a.js": "text/javascript", "/a.css": "text/css" };
    export default { fetch(req) { const path = new URL(req.url).pathname; return pages[path] === undefined ? new Response("missing", { status: 404 }) : new Response(pages[path], { headers: { "content-type": types[path] } }); } };`,
  compatibilityDate: "2026-08-01",
});
const bareUrl = (await bare.ready).href;

const dev = startDev(PORT);
await dev.ready();
await eraseWorkspaces(PLATFORM, "bench-console-");
const ws = { slug: `bench-console-${Date.now().toString(36)}`, name: "Bench Console", email: "", password: "correct horse battery" };
ws.email = `owner@${ws.slug}.test`;
const made = await makeWorkspace(PLATFORM, ws);
const session = { accessToken: made.access_token, refreshToken: made.refresh_token, user: made.user };

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
/** One cold load (a fresh context: nothing cached); answers bytes over the wire and ms until interactive. */
async function load(url: string, interactive: (p: Page) => Promise<void>, signedIn: boolean) {
  const context = await browser.newContext();
  if (signedIn) await context.addInitScript((s) => sessionStorage.setItem("tessera.session", s), JSON.stringify(session));
  const p = await context.newPage();
  await p.goto(url);
  await interactive(p);
  const timing = await p.evaluate(() => {
    const nav = performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming;
    const resources = performance.getEntriesByType("resource") as PerformanceResourceTiming[];
    const first = resources.filter((r) => /\.(js|css)$/.test(new URL(r.name).pathname));
    return { ready: performance.now(), bytes: nav.transferSize + first.reduce((n, r) => n + r.transferSize, 0) };
  });
  await context.close();
  return timing;
}
const app = () => load(`http://${ws.slug}.localhost:${PORT}/projects`, (p) => p.getByText("No projects yet").waitFor(), true);
const floor = () =>
  load(
    bareUrl,
    async (p) => {
      await p.waitForFunction(() => document.readyState === "complete");
    },
    false,
  );
await app();
await floor();
const samples = { app: [] as { ready: number; bytes: number }[], floor: [] as { ready: number; bytes: number }[] };
for (let i = 0; i < LOADS; i++) {
  samples.app.push(await app());
  samples.floor.push(await floor());
}
await browser.close();
await eraseWorkspaces(PLATFORM, "bench-console-");
dev.stop();
await bare.dispose();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (k: "app" | "floor") => median(samples[k].map((s) => s.ready));
const kb = (k: "app" | "floor") => median(samples[k].map((s) => s.bytes)) / 1024;
console.log(`first-load files: html ${sizes.html} B, js ${sizes.js} B, css ${sizes.css} B (before compression)`);
console.log(
  [
    "| measure | console dashboard | static page, same size, bare Worker | × static |",
    "|---|---:|---:|---:|",
    `| bytes over the wire (document, script, stylesheet), KB, median of ${LOADS} | ${kb("app").toFixed(1)} | ${kb("floor").toFixed(1)} | ${(kb("app") / kb("floor")).toFixed(2)} |`,
    `| time to interactive, ms, median of ${LOADS} cold loads | ${ms("app").toFixed(0)} | ${ms("floor").toFixed(0)} | ${(ms("app") / ms("floor")).toFixed(2)} |`,
  ].join("\n"),
);
process.exit(0);
