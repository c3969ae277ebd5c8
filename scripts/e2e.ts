// `npm run test:e2e`: the console driven in a real browser (Debian's Chromium through playwright-core)
// against `npm run dev` on its own port, as a person would use it. Each journey is a named check;
// the run fails on the first that does not hold, with a screenshot of the page as it was.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";

const PORT = Number(process.env.E2E_PORT ?? 8799);
const PLATFORM = `http://localhost:${PORT}`;
const tenantUrl = (slug: string, path = "/") => `http://${slug}.localhost:${PORT}${path}`;
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const OUT = ".e2e";

if (!existsSync(CHROMIUM)) {
  console.error(`No Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH).`);
  process.exit(2);
}
mkdirSync(OUT, { recursive: true });

const dev: ChildProcess = spawn("npm", ["run", "dev", "--", "--port", String(PORT)], { stdio: ["ignore", "pipe", "pipe"], detached: true });
let devLog = "";
dev.stdout!.on("data", (b: Buffer) => (devLog += b.toString()));
dev.stderr!.on("data", (b: Buffer) => (devLog += b.toString()));
const stop = () => {
  try {
    process.kill(-dev.pid!, "SIGTERM");
  } catch {
    // already gone
  }
};
process.on("exit", stop);

/** The demo owner's password, from the .dev.vars `npm run dev` made. */
const demoPassword = () => /^DEMO_OWNER_PASSWORD='([^']+)'/m.exec(readFileSync(".dev.vars", "utf8"))![1]!;

async function ready() {
  for (let i = 0; i < 240; i++) {
    // The dev script prints its banner once the pool is registered and the demo tenant seeded.
    if (devLog.includes("Tessera is running")) return;
    if (dev.exitCode !== null) throw new Error(`npm run dev exited:\n${devLog}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`npm run dev did not come up in 120 s:\n${devLog}`);
}

const checks: { name: string; run: (browser: Browser) => Promise<void> }[] = [];
const check = (name: string, run: (browser: Browser) => Promise<void>) => checks.push({ name, run });
function expect(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(what);
}
let current: Page | undefined;
async function page(browser: Browser, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  current = await context.newPage();
  return current;
}

check("signs up on the platform host, lands signed in on the new workspace, and creates a project", async (browser) => {
  const p = await page(browser);
  const slug = `e2e-${Date.now().toString(36)}`;
  await p.goto(PLATFORM);
  await p.getByLabel("Workspace name").fill("E2E Studio");
  await p.getByLabel("Address").fill(slug);
  await p.getByLabel("Your name").fill("Eve Tester");
  await p.getByLabel("Email").fill(`eve@${slug}.test`);
  await p.getByLabel("Password").fill("correct horse battery");
  await p.getByRole("button", { name: "Create workspace" }).click();
  await p.waitForURL(tenantUrl(slug, "/projects"));
  await p.getByText("No projects yet").waitFor();
  expect(!p.url().includes("#"), "the session handed over in the fragment is taken out of the address bar");
  await p.getByLabel("Project name").fill("Spring launch");
  await p.getByRole("button", { name: "Create project" }).click();
  await p.getByRole("list", { name: "Projects" }).getByText("Spring launch").waitFor();
  expect((await p.getByText(/^Loading/).count()) === 0, "no loading message is left on the page");
  // A reload keeps the tab's session and shows what the API holds.
  await p.reload();
  await p.getByRole("list", { name: "Projects" }).getByText("Spring launch").waitFor();
  await p.screenshot({ path: `${OUT}/projects.png` });
});

check("shows the API's own message beside the field it names, and nothing is made", async (browser) => {
  const p = await page(browser, { width: 390, height: 844 });
  await p.goto(PLATFORM);
  await p.getByLabel("Workspace name").fill("Taken");
  await p.getByLabel("Address").fill("demo");
  await p.getByLabel("Your name").fill("Mallory");
  await p.getByLabel("Email").fill(`m-${Date.now()}@example.test`);
  await p.getByLabel("Password").fill("correct horse battery");
  await p.getByRole("button", { name: "Create workspace" }).click();
  await p.getByText("taken", { exact: true }).waitFor();
  expect((await p.getByLabel("Address").getAttribute("aria-invalid")) === "true", "the Address field is marked invalid");
  await p.getByRole("alert").getByText(/is taken/).waitFor();
  expect(p.url() === `${PLATFORM}/`, "still on the sign-up page");
  await p.screenshot({ path: `${OUT}/signup-phone.png` });
});

check("signs in to a tenant with the keyboard, refusing a wrong password with the API's words", async (browser) => {
  const p = await page(browser);
  await p.goto(tenantUrl("demo"));
  await p.getByRole("heading", { name: /Sign in to Demo Studio/ }).waitFor();
  await p.getByLabel("Email").focus();
  await p.keyboard.type("owner@demo.test");
  await p.keyboard.press("Tab");
  await p.keyboard.type("not the password");
  await p.keyboard.press("Enter");
  await p.getByRole("alert").waitFor();
  expect(((await p.getByRole("alert").textContent()) ?? "").length > 10, "the refusal says why");
  await p.getByLabel("Password").fill(demoPassword());
  await p.keyboard.press("Enter");
  await p.getByRole("heading", { name: "Projects" }).waitFor();
  await p.getByRole("button", { name: "Sign out" }).click();
  await p.getByRole("heading", { name: /Sign in to Demo Studio/ }).waitFor();
});

check("serves a missing file as a 404 and the API reference offline", async (browser) => {
  const p = await page(browser);
  const missing = await p.goto(tenantUrl("demo", "/assets/nothing.js"));
  expect(missing?.status() === 404, `a missing file is a 404 (got ${missing?.status()})`);
  const outside: string[] = [];
  p.on("request", (r) => {
    if (!r.url().startsWith(PLATFORM)) outside.push(r.url());
  });
  await p.goto(`${PLATFORM}/docs`);
  await p.getByText("Tessera API").first().waitFor({ timeout: 20_000 });
  expect(!outside.some((u) => u.endsWith(".js")), `no script from elsewhere: ${outside.join(", ")}`);
});

let failed = 0;
try {
  await ready();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  for (const c of checks) {
    const started = performance.now();
    try {
      await c.run(browser);
      console.log(`✓ ${c.name} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
    } catch (err) {
      failed++;
      const shot = `${OUT}/failed-${checks.indexOf(c)}.png`;
      await current?.screenshot({ path: shot }).catch(() => {});
      console.error(`✗ ${c.name}\n  ${(err as Error).message.split("\n").join("\n  ")}\n  screenshot: ${shot}`);
    } finally {
      await current?.context().close();
    }
  }
  await browser.close();
} catch (err) {
  failed++;
  console.error(err);
}
stop();
console.log(failed ? `\n${failed} of ${checks.length} failed` : `\nall ${checks.length} passed`);
process.exit(failed ? 1 : 0);
