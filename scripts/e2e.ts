// `npm run test:e2e`: the console driven in a real browser (Debian's Chromium through playwright-core)
// against `npm run dev` on its own port, as a person would use it. Each journey is a named check;
// the run fails on the first that does not hold, with a screenshot of the page as it was.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium, type Browser, type Page } from "playwright-core";
import { devVar, eraseWorkspaces, makeWorkspace, startDev } from "./dev-server.ts";

const PORT = Number(process.env.E2E_PORT ?? 8799);
const PLATFORM = `http://localhost:${PORT}`;
const tenantUrl = (slug: string, path = "/") => `http://${slug}.localhost:${PORT}${path}`;
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const OUT = ".e2e";
/** Where the main pages' screenshots go: `npm run screenshots` writes the README's (docs/screenshots). */
const SHOTS = process.env.SCREENSHOTS_DIR ?? OUT;

if (!existsSync(CHROMIUM)) {
  console.error(`No Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH).`);
  process.exit(2);
}
mkdirSync(OUT, { recursive: true });
mkdirSync(SHOTS, { recursive: true });

const dev = startDev(PORT);
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
  await p.screenshot({ path: `${SHOTS}/projects.png` });
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
  await p.screenshot({ path: `${SHOTS}/signup-phone.png` });
});

check("signs in with the keyboard, refusing a wrong password with the API's words", async (browser) => {
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
  // (A failed sign-in slows the next for that account, by design: the right password goes in on another.)
  await p.goto(tenantUrl(WS.slug));
  await p.getByLabel("Email").focus();
  await p.keyboard.type(WS.email);
  await p.keyboard.press("Tab");
  await p.keyboard.type(WS.password);
  await p.keyboard.press("Enter");
  await p.getByRole("heading", { name: "Projects" }).waitFor();
  await p.getByRole("button", { name: "Sign out" }).click();
  await p.getByRole("heading", { name: /Sign in to E2E Workspace/ }).waitFor();
});

/** The run's own workspace (signed up before the checks, erased after), so runs never pile data on the demo tenant. */
const WS = { slug: `e2e-ws-${Date.now().toString(36)}`, email: "", password: "correct horse battery" };
WS.email = `owner@${WS.slug}.test`;
/** Signs in to the run's workspace in a fresh context; answers the page. */
async function signedIn(browser: Browser, viewport?: { width: number; height: number }) {
  const p = await page(browser, viewport);
  await p.goto(tenantUrl(WS.slug));
  await p.getByLabel("Email").fill(WS.email);
  await p.getByLabel("Password").fill(WS.password);
  await p.getByRole("button", { name: "Sign in" }).click();
  await p.getByRole("heading", { name: "Projects" }).waitFor();
  return p;
}

/** Makes a project through the page and opens it. */
async function openNewProject(p: Page, name: string) {
  await p.getByLabel("Project name").fill(name);
  await p.getByRole("button", { name: "Create project" }).click();
  await p.getByRole("list", { name: "Projects" }).getByRole("link", { name }).click();
  await p.getByRole("heading", { name, level: 1 }).waitFor();
}

check("chats live in two browser windows at once: both see the message and the reply streamed", async (browser) => {
  const a = await signedIn(browser);
  await openNewProject(a, `Chat ${Date.now().toString(36)}`);
  await a.getByLabel("Conversation title").fill("Launch plan");
  await a.getByRole("button", { name: "Start a conversation" }).click();
  await a.getByRole("heading", { name: "Launch plan" }).waitFor();
  await a.getByText("Live").waitFor();
  const b = await (await browser.newContext()).newPage();
  // The second window signs in on its own and opens the same address.
  await b.goto(tenantUrl(WS.slug));
  await b.getByLabel("Email").fill(WS.email);
  await b.getByLabel("Password").fill(WS.password);
  await b.getByRole("button", { name: "Sign in" }).click();
  await b.getByRole("heading", { name: "Projects" }).waitFor();
  await b.goto(a.url());
  await b.getByText("Live").waitFor();
  await a.getByRole("textbox", { name: "Message" }).fill("Give me three launch ideas");
  await a.keyboard.press("Enter");
  for (const p of [a, b]) await p.getByRole("list", { name: "Messages" }).getByText("Give me three launch ideas").waitFor();
  // The reply streams into both: seen while streaming in one, and complete in both.
  await b.locator(".message.assistant.streaming").first().waitFor({ timeout: 10_000 });
  for (const p of [a, b]) await p.locator(".message.assistant:not(.streaming)").first().waitFor({ timeout: 20_000 });
  const replies = await Promise.all([a, b].map((p) => p.locator(".message.assistant:not(.streaming) p").first().textContent()));
  expect(!!replies[0] && replies[0].length > 20 && replies[0] === replies[1], `both windows hold the same full reply (${JSON.stringify(replies)})`);
  await a.screenshot({ path: `${SHOTS}/conversation.png` });
  await b.context().close();
});

check("starts a run and watches it finish, with its output", async (browser) => {
  const p = await signedIn(browser);
  await openNewProject(p, `Runs ${Date.now().toString(36)}`);
  await p.getByLabel("Agent name").fill("Copywriter");
  await p.getByRole("button", { name: "Add agent" }).click();
  await p.getByLabel("What should it write?").fill("A tagline for a spring sale");
  await p.getByRole("button", { name: "Start run" }).click();
  await p.getByRole("list", { name: "Run events" }).getByText("run.created").waitFor();
  await p.getByRole("status").getByText("SUCCEEDED").waitFor({ timeout: 30_000 });
  await p.getByRole("list", { name: "Run events" }).getByText("run.succeeded").waitFor();
  expect(((await p.getByRole("figure", { name: "Run output" }).textContent()) ?? "").length > 10, "the output is shown");
  await p.getByRole("link", { name: "Open the output artifact" }).click();
  await p.getByRole("figure", { name: /Preview of/ }).waitFor();
  await p.screenshot({ path: `${SHOTS}/run-artifact.png` });
});

check("uploads an image and a text file and previews each", async (browser) => {
  const p = await signedIn(browser, { width: 390, height: 844 });
  await openNewProject(p, `Files ${Date.now().toString(36)}`);
  // A 2×2 PNG, and a text file.
  const png = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAYAAABytg0kAAAAFklEQVR42mP8z8DwnwEIGEEMBmYGBgA1ZAT9vS1pRwAAAABJRU5ErkJggg==", "base64");
  await p.getByLabel("Upload a file").setInputFiles({ name: "swatch.png", mimeType: "image/png", buffer: png });
  await p.getByRole("heading", { name: "swatch.png" }).waitFor();
  const image = p.getByRole("img", { name: "Preview of swatch.png" });
  await image.waitFor();
  await p.waitForFunction(() => (document.querySelector("img.preview") as HTMLImageElement | null)?.naturalWidth === 2);
  await p.goBack();
  await p.getByLabel("Upload a file").setInputFiles({ name: "brief.txt", mimeType: "text/plain", buffer: Buffer.from("Spring brief: tulips and sunshine.") });
  await p.getByRole("figure", { name: "Preview of brief.txt" }).getByText("tulips and sunshine").waitFor();
  await p.screenshot({ path: `${SHOTS}/artifact-phone.png` });
});

/** Calls the API from inside a signed-in page, with that tab's session: the console's own credential. */
function inPage<T>(p: Page, steps: string): Promise<T> {
  return p.evaluate(async (body) => {
    const token = JSON.parse(sessionStorage.getItem("tessera.session")!).accessToken as string;
    const call = async (path: string, json?: unknown) => {
      const res = await fetch(path, { method: json === undefined ? "GET" : "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: json === undefined ? undefined : JSON.stringify(json) });
      if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
      return res.status === 204 ? null : res.json();
    };
    return new Function("call", `return (async () => { ${body} })()`)(call);
  }, steps) as Promise<T>;
}

check("approves a post through a guest review link, with no account", async (browser) => {
  const owner = await signedIn(browser);
  const { token, postId } = await inPage<{ token: string; postId: string }>(
    owner,
    `const project = await call("/v1/projects", { name: "Client work " + Date.now().toString(36) });
     // Approval required, so the submitted post waits for a reviewer (with no policy, submitting approves it).
     await fetch("/v1/projects/" + project.id + "/approval-policy", { method: "PUT", headers: { authorization: "Bearer " + JSON.parse(sessionStorage.getItem("tessera.session")).accessToken, "content-type": "application/json" }, body: JSON.stringify({ mode: "required" }) });
     const post = await call("/v1/posts", { project_id: project.id, title: "Spring is here", variants: [{ channel: "linkedin", text: "Tulips, sunshine and 20% off all week." }] });
     await call("/v1/posts/" + post.id + "/submit", {});
     const link = await call("/v1/posts/" + post.id + "/review-links", { name: "Carla at the client" });
     return { token: link.token, postId: post.id };`,
  );
  const guest = await page(browser, { width: 390, height: 844 });
  await guest.goto(tenantUrl(WS.slug, `/review/${token}`));
  await guest.getByRole("heading", { name: "Spring is here" }).waitFor();
  await guest.getByText("Reviewing as Carla at the client").waitFor();
  await guest.getByRole("article", { name: "linkedin version" }).getByText("Tulips, sunshine").waitFor();
  await guest.getByRole("button", { name: "Approve" }).click();
  await guest.getByRole("status").getByText(/Approved/).waitFor();
  await guest.screenshot({ path: `${SHOTS}/guest-review.png` });
  const post = await inPage<{ status: string; approved_revision: number }>(owner, `return call("/v1/posts/${postId}");`);
  expect(post.status === "approved" && post.approved_revision === 1, `the post is approved at revision 1 (${JSON.stringify(post)})`);
  // A made-up link opens nothing.
  await guest.goto(tenantUrl(WS.slug, "/review/rvl_not_a_real_token"));
  await guest.getByRole("alert").waitFor();
  await guest.context().close();
});

check("shows usage charts that move when a run spends tokens", async (browser) => {
  const p = await signedIn(browser);
  await p.getByRole("link", { name: "Usage" }).click();
  await p.getByRole("heading", { name: "Usage" }).waitFor();
  const total = async () => Number(((await p.getByTestId("total-tokens").textContent()) ?? "0").replace(/\D/g, ""));
  const before = await total();
  await inPage(
    p,
    `const project = await call("/v1/projects", { name: "Spend " + Date.now().toString(36) });
     const agent = await call("/v1/agents", { project_id: project.id, name: "Spender", system_prompt: "You write." });
     const run = await call("/v1/runs", { agent_id: agent.id, project_id: project.id, input: { text: "Write a long story about spring" } });
     for (let i = 0; i < 100; i++) {
       if ((await call("/v1/runs/" + run.id)).status === "SUCCEEDED") return;
       await new Promise((r) => setTimeout(r, 200));
     }
     throw new Error("the run did not finish");`,
  );
  await p.reload();
  await p.getByRole("heading", { name: "Usage" }).waitFor();
  const after = await total();
  expect(after > before, `the total grew (${before} → ${after})`);
  await p.getByRole("img", { name: /^Tokens per day/ }).waitFor();
  await p.screenshot({ path: `${SHOTS}/usage.png` });
});

check("invites a member who joins through the link, and shows a new API key's secret once", async (browser) => {
  const owner = await signedIn(browser);
  await inPage(owner, `await call("/v1/projects", { name: "Team project " + Date.now().toString(36) });`);
  await owner.getByRole("link", { name: "Team" }).click();
  await owner.getByRole("heading", { name: "Team", level: 1 }).waitFor();
  const email = `ed-${Date.now().toString(36)}@${WS.slug}.test`;
  await owner.getByLabel("Email").fill(email);
  await owner.getByLabel("Role", { exact: true }).selectOption("editor");
  await owner.getByRole("button", { name: "Invite" }).click();
  const link = await owner.getByLabel("Invitation link").inputValue();
  await owner.getByRole("list", { name: "Open invitations" }).getByText(email).waitFor();
  // The invited person, in a browser of their own, on a phone.
  const ed = await page(browser, { width: 390, height: 844 });
  await ed.goto(link);
  await ed.getByRole("heading", { name: "Join E2E Workspace" }).waitFor();
  await ed.getByLabel("Your name").fill("Ed Itor");
  await ed.getByLabel("Password").fill("short");
  await ed.getByRole("button", { name: "Join" }).click();
  await ed.locator("#field-password[aria-invalid=true]").waitFor();
  await ed.getByLabel("Password").fill("a long enough password");
  await ed.getByRole("button", { name: "Join" }).click();
  await ed.getByRole("heading", { name: "Projects" }).waitFor();
  expect(ed.url().endsWith("/projects"), `the invitation's token leaves the address bar (${ed.url()})`);
  await ed.context().close();
  await owner.reload();
  await owner.getByRole("list", { name: "Members" }).getByText("Ed Itor").waitFor();
  // Limit Ed to one project: the row then names it.
  await owner.getByRole("button", { name: "Projects of Ed Itor" }).click();
  const reach = owner.getByRole("form", { name: "Projects Ed Itor reaches" });
  const first = reach.getByRole("checkbox").first();
  const projectName = ((await reach.locator("label.check").first().textContent()) ?? "").trim();
  await first.check();
  await reach.getByRole("button", { name: "Save projects" }).click();
  await owner.getByRole("list", { name: "Members" }).getByRole("listitem").filter({ hasText: "Ed Itor" }).getByText(projectName).waitFor();
  expect((await owner.getByRole("list", { name: "Open invitations" }).getByText(email).count()) === 0, "the accepted invitation is no longer open");
  // An API key: its secret once, then only its prefix; and it works.
  await owner.getByLabel("Key name").fill("CI deploy");
  await owner.getByRole("button", { name: "Create key" }).click();
  const key = await owner.getByLabel("New API key").inputValue();
  const listed = owner.getByRole("list", { name: "API keys" }).getByRole("listitem").filter({ hasText: "CI deploy" });
  const prefix = ((await listed.locator("code").textContent()) ?? "").replace("…", "");
  expect(prefix.length > 4 && key.startsWith(prefix), `the list shows the key's prefix only (${prefix})`);
  const status = await owner.evaluate(async (k) => (await fetch("/v1/projects", { headers: { authorization: `Bearer ${k}` } })).status, key);
  expect(status === 200, `the new key reads projects (${status})`);
  await owner.screenshot({ path: `${SHOTS}/team.png` });
  await owner.reload();
  await owner.getByRole("list", { name: "API keys" }).getByText("CI deploy").waitFor();
  expect((await owner.getByLabel("New API key").count()) === 0, "the secret is not shown again");
});

check("a client sees only their project's posts, reviews them on the board, and is offered nothing else", async (browser) => {
  const owner = await signedIn(browser);
  const email = `client-${Date.now().toString(36)}@${WS.slug}.test`;
  const { link } = await inPage<{ link: string }>(
    owner,
    `const mine = await call("/v1/projects", { name: "Client project " + Date.now().toString(36) });
     await call("/v1/projects", { name: "Agency internal " + Date.now().toString(36) });
     await fetch("/v1/projects/" + mine.id + "/approval-policy", { method: "PUT", headers: { authorization: "Bearer " + JSON.parse(sessionStorage.getItem("tessera.session")).accessToken, "content-type": "application/json" }, body: JSON.stringify({ mode: "required" }) });
     const post = await call("/v1/posts", { project_id: mine.id, title: "For the client", variants: [{ channel: "linkedin", text: "Hello" }] });
     await call("/v1/posts/" + post.id + "/submit", {});
     const inv = await call("/v1/invitations", { email: "${email}", role: "client", projects: [mine.id] });
     return { link: "/invite/" + inv.token };`,
  );
  const client = await page(browser, { width: 390, height: 844 });
  await client.goto(tenantUrl(WS.slug, link));
  await client.getByLabel("Your name").fill("Carla Client");
  await client.getByLabel("Password").fill("a long enough password");
  await client.getByRole("button", { name: "Join" }).click();
  const cards = client.getByRole("list", { name: "Projects" }).getByRole("listitem");
  await cards.first().waitFor();
  const names = await cards.allTextContents();
  expect(names.length === 1 && names[0]!.startsWith("Client project"), `only the client's project is listed (${names.join(", ")})`);
  const nav = (await client.getByRole("navigation", { name: "Main" }).getByRole("link").allTextContents()).join(",");
  expect(nav === "Projects,Data", `the navigation offers projects and their own data only (${nav})`);
  await cards.first().getByRole("link").click();
  await client.getByRole("link", { name: "Review this project's posts" }).click();
  await client.getByRole("region", { name: /^In review/ }).getByText("For the client").waitFor();
  expect((await client.getByRole("form", { name: "New post" }).count()) === 0, "a client is not offered a new post");
  expect((await client.getByRole("alert").count()) === 0, "no section answers a refusal");
  await client.getByRole("button", { name: "Approve For the client" }).click();
  await client.getByRole("region", { name: /^Approved/ }).getByText("For the client").waitFor();
  await client.context().close();
});

check("sends a webhook test event, shows its failed attempt, and replays it", async (browser) => {
  const p = await signedIn(browser);
  await p.getByRole("link", { name: "Webhooks" }).click();
  await p.getByText("No endpoints yet").waitFor();
  await p.getByLabel("Endpoint URL").fill("ftp://example.com/hook");
  await p.getByRole("button", { name: "Add endpoint" }).click();
  await p.locator("#endpoint-url[aria-invalid=true]").waitFor();
  // The platform's own address answers a POST with 404: every attempt there fails, which is what this check wants to see.
  await p.getByLabel("Endpoint URL").fill(`${PLATFORM}/v1/not-a-receiver`);
  await p.getByRole("button", { name: "Add endpoint" }).click();
  expect((await p.getByLabel("Signing secret").inputValue()).startsWith("whsec_"), "the signing secret is shown once");
  await p.getByRole("list", { name: "Endpoints" }).getByRole("link").click();
  await p.getByRole("button", { name: "Send a test event" }).click();
  const deliveries = p.getByRole("list", { name: "Deliveries" });
  const attempted = async (n: number) => {
    for (let i = 0; i < 60; i++) {
      await p.getByRole("button", { name: "Refresh" }).click();
      if ((await deliveries.getByRole("listitem").filter({ hasText: "webhook.test" }).getByText(new RegExp(`${n} attempts? · HTTP 404`)).count()) > 0) return;
      await p.waitForTimeout(500);
    }
    throw new Error(`no delivery shows ${n} attempt(s) answered 404: ${await deliveries.textContent()}`);
  };
  await attempted(1);
  const test = deliveries.getByRole("listitem").filter({ hasText: "webhook.test" });
  await test.getByRole("button", { name: "Attempts" }).click();
  await test.getByRole("list", { name: "Attempts" }).getByText(/#1 .* HTTP 404/).waitFor();
  await test.getByRole("button", { name: /^Replay/ }).click();
  await attempted(2);
  await p.screenshot({ path: `${SHOTS}/webhook.png` });
});

check("filters the audit log and exports what it shows", async (browser) => {
  const p = await signedIn(browser);
  await p.getByRole("link", { name: "Audit" }).click();
  await p.getByRole("table", { name: "Audit entries" }).waitFor();
  // Signing in wrote an auth.login entry: there is always one to find.
  await p.getByLabel(/^Action/).fill("auth.login");
  await p.getByRole("button", { name: "Apply filters" }).click();
  const rows = p.getByRole("table", { name: "Audit entries" }).locator("tbody tr");
  await rows.first().getByText("auth.login").waitFor();
  const actions = await rows.locator("td:nth-child(2)").allTextContents();
  expect(actions.length > 0 && actions.every((a) => a === "auth.login"), `only the filtered action shows (${actions.join(", ")})`);
  const [file] = await Promise.all([p.waitForEvent("download"), p.getByRole("button", { name: "Export CSV" }).click()]);
  const csv = await new Response(await file.createReadStream() as unknown as ReadableStream).text();
  const lines = csv.trim().split("\n");
  expect(file.suggestedFilename().endsWith(".csv") && lines.length === actions.length + 1 && lines.slice(1).every((l) => l.includes("auth.login")), `the export holds the filtered entries (${file.suggestedFilename()}: ${csv.slice(0, 300)})`);
  await p.screenshot({ path: `${SHOTS}/audit.png` });
});

check("exports my data with progress, then offers the ZIP", async (browser) => {
  const p = await signedIn(browser);
  await p.getByRole("link", { name: "Data" }).click();
  await p.getByRole("button", { name: "Export my data" }).click();
  const link = p.getByRole("list", { name: "Exports" }).getByRole("button", { name: /^Download/ });
  await link.waitFor({ timeout: 60_000 });
  const [file] = await Promise.all([p.waitForEvent("download"), link.click()]);
  const bytes = new Uint8Array(await new Response(await file.createReadStream() as unknown as ReadableStream).arrayBuffer());
  expect(bytes[0] === 0x50 && bytes[1] === 0x4b && bytes.length > 200, `the download is a ZIP (${bytes.length} bytes)`);
  await p.getByLabel("Keep audit entries for (days)").fill("-3");
  await p.getByRole("button", { name: "Save retention" }).click();
  await p.locator("#retention-audit[aria-invalid=true]").waitFor();
  await p.getByLabel("Keep audit entries for (days)").fill("500");
  await p.getByRole("button", { name: "Save retention" }).click();
  await p.getByRole("status").getByText("Saved.").waitFor();
});

check("writes a post, revises it, comments, approves it on the board and schedules it onto the calendar", async (browser) => {
  const p = await signedIn(browser);
  await openNewProject(p, `Content ${Date.now().toString(36)}`);
  await p.getByRole("navigation", { name: "Project" }).getByRole("link", { name: "Content" }).click();
  await p.getByText("No posts yet").waitFor();
  await p.getByLabel("Approval").selectOption("required");
  await p.getByLabel("Channel", { exact: true }).first().waitFor();
  await p.getByRole("form", { name: "Connect a channel" }).getByLabel("Channel").fill("linkedin");
  await p.getByLabel("Account name").fill("Acme on LinkedIn");
  await p.getByRole("button", { name: "Connect" }).click();
  await p.getByRole("list", { name: "Channels" }).getByText("Acme on LinkedIn").waitFor();
  await p.getByLabel("Campaign name").fill("Spring");
  await p.getByRole("button", { name: "Add campaign" }).click();
  await p.getByRole("list", { name: "Campaigns" }).getByText("Spring").waitFor();
  await p.getByLabel("Title").fill("Tulip week");
  await p.getByRole("form", { name: "New post" }).getByLabel("Text").fill("Tulips, sunshine and 20% off.");
  await p.getByLabel("Campaign", { exact: true }).selectOption({ label: "Spring" });
  await p.getByRole("button", { name: "Write post" }).click();
  await p.getByRole("heading", { name: "Tulip week", level: 1 }).waitFor();
  // A second revision; the first stays readable.
  await p.getByLabel("Text for linkedin").fill("Tulips, sunshine and 25% off all week.");
  await p.getByRole("button", { name: "Save as revision 2" }).click();
  await p.getByRole("heading", { name: "Edit revision 2" }).waitFor();
  await p.getByRole("list", { name: "Revisions" }).getByRole("button", { name: "Revision 1" }).click();
  await p.getByRole("list", { name: "Revisions" }).getByText("20% off.").waitFor();
  // A colleague saves revision 3 meanwhile: this page's save (made on 2) is refused, not lost, and the newer one loads on request.
  const colleague = await signedIn(browser);
  await colleague.goto(p.url());
  await colleague.getByLabel("Title").fill("Tulip week!");
  await colleague.getByRole("button", { name: "Save as revision 3" }).click();
  await colleague.getByRole("heading", { name: "Edit revision 3" }).waitFor();
  current = p;
  await p.getByLabel("Text for linkedin").fill("Tulips and 30% off.");
  await p.getByRole("button", { name: "Save as revision 3" }).click();
  await p.getByRole("form", { name: "Edit post" }).getByRole("alert").waitFor();
  expect((await p.getByLabel("Text for linkedin").inputValue()) === "Tulips and 30% off.", "the refused edit stays on the page");
  await p.getByRole("button", { name: /^Load the newer revision/ }).click();
  await p.getByRole("heading", { name: "Edit revision 3" }).waitFor();
  await colleague.context().close();
  await p.getByLabel("Comment", { exact: true }).fill("Shall we say which tulips?");
  await p.getByRole("button", { name: "Comment", exact: true }).click();
  await p.getByRole("list", { name: "Comments" }).getByText("Shall we say which tulips?").waitFor();
  await p.getByRole("button", { name: "Submit for review" }).click();
  await p.getByTestId("post-status").getByText("in review").waitFor();
  // The board: approve from the "In review" lane; the card moves to "Approved".
  await p.getByRole("link", { name: "Content", exact: true }).click();
  await p.getByRole("region", { name: /^In review/ }).getByText("Tulip week").waitFor();
  await p.getByRole("heading", { name: "Approval board" }).evaluate((h) => h.scrollIntoView());
  await p.screenshot({ path: `${SHOTS}/approval-board.png` });
  await p.getByRole("button", { name: "Approve Tulip week" }).click();
  await p.getByRole("region", { name: /^Approved/ }).getByText("Tulip week").waitFor();
  await p.getByRole("region", { name: /^Approved/ }).getByRole("link", { name: "Tulip week" }).click();
  await p.getByTestId("post-status").getByText("approved").waitFor();
  const at = new Date(Date.now() + 2 * 86_400_000);
  at.setHours(10, 0, 0, 0);
  const local = `${at.getFullYear()}-${String(at.getMonth() + 1).padStart(2, "0")}-${String(at.getDate()).padStart(2, "0")}T10:00`;
  await p.getByLabel("Publish at (your time)").fill(local);
  await p.getByRole("button", { name: "Schedule", exact: true }).click();
  await p.getByTestId("post-status").getByText("scheduled").waitFor();
  await p.getByRole("list", { name: "Reviews" }).getByText("approved").waitFor();
  await p.screenshot({ path: `${SHOTS}/post-editor.png` });
  await p.getByRole("link", { name: "Content", exact: true }).click();
  await p.getByRole("navigation", { name: "Project" }).getByRole("link", { name: "Calendar" }).click();
  if (at.getMonth() !== new Date().getMonth()) await p.getByRole("button", { name: "Next month" }).click();
  const day = p.getByRole("list", { name: /^Posts in/ }).getByRole("listitem", { name: new RegExp(`\\b${at.getDate()}\\b.*1 post`) });
  await day.getByRole("link", { name: /Tulip week/ }).waitFor();
  await p.screenshot({ path: `${SHOTS}/calendar.png` });
});

check("uploads a document to a knowledge base, waits for it to be ready, and searches it with scores", async (browser) => {
  const p = await signedIn(browser);
  await openNewProject(p, `Knowledge ${Date.now().toString(36)}`);
  await p.getByRole("navigation", { name: "Project" }).getByRole("link", { name: "Knowledge" }).click();
  await p.getByLabel("Knowledge base name").fill("Handbook");
  await p.getByRole("button", { name: "Create" }).click();
  await p.getByRole("list", { name: "Knowledge bases" }).getByRole("link", { name: "Handbook" }).click();
  await p.getByRole("heading", { name: "Handbook", level: 1 }).waitFor();
  const text = "# Returns\n\nCustomers may return any item within 30 days for a full refund. Sale items are final.\n\n# Shipping\n\nOrders ship within two business days from our Rotterdam warehouse.\n";
  await p.getByLabel(/^Add a document/).setInputFiles({ name: "policies.md", mimeType: "text/markdown", buffer: Buffer.from(text) });
  const doc = p.getByRole("list", { name: "Documents" }).getByRole("listitem").filter({ hasText: "policies.md" });
  await doc.getByText("ready").waitFor({ timeout: 30_000 });
  await p.getByLabel("Question or words").fill("how long do I have to return something for a refund?");
  await p.getByRole("button", { name: "Search", exact: true }).click();
  const results = p.getByRole("list", { name: "Results" });
  await results.getByText("within 30 days").waitFor();
  const score = Number(await results.locator(".score").first().textContent());
  expect(score > 0, `each result shows its score (${score})`);
  await p.screenshot({ path: `${SHOTS}/knowledge.png` });
});

check("makes a prompt with two versions split 50/50, and a run by its agent shows in the version stats", async (browser) => {
  const p = await signedIn(browser);
  const key = `greeting-${Date.now().toString(36)}`;
  await p.getByRole("link", { name: "Prompts" }).click();
  await p.getByLabel("Key").fill("Not A Key");
  await p.getByLabel("Template").fill("You are cheerful.");
  await p.getByRole("button", { name: "Create prompt" }).click();
  await p.locator("#prompt-key[aria-invalid=true]").waitFor();
  await p.getByLabel("Key").fill(key);
  await p.getByRole("button", { name: "Create prompt" }).click();
  await p.getByRole("heading", { name: key, level: 1 }).waitFor();
  await p.getByLabel("Template").fill("You are cheerful and brief.");
  await p.getByLabel("Note").fill("shorter answers");
  await p.getByRole("button", { name: "Add version 2" }).click();
  await p.getByLabel("Weight of version 2").waitFor();
  await p.getByLabel("Weight of version 1").fill("50");
  await p.getByLabel("Weight of version 2").fill("50");
  await p.getByRole("button", { name: "Save weights" }).click();
  await p.getByRole("table", { name: "Versions" }).getByText("50.0%").first().waitFor();
  // An agent on this prompt runs once; the run counts against the version it drew.
  await p.getByRole("link", { name: "Projects" }).click();
  await openNewProject(p, `Prompts ${Date.now().toString(36)}`);
  await p.getByLabel("Agent name").fill("Greeter");
  await p.getByLabel("Prompt").selectOption(key);
  await p.getByRole("button", { name: "Add agent" }).click();
  await p.getByLabel("What should it write?").fill("Say hello");
  await p.getByRole("button", { name: "Start run" }).click();
  await p.getByRole("status").getByText("SUCCEEDED").waitFor({ timeout: 30_000 });
  await p.goto(tenantUrl(WS.slug, `/prompts/${key}`));
  await p.getByRole("table", { name: "Versions" }).waitFor();
  const runs = `${await p.getByTestId("runs-v1").textContent()} ${await p.getByTestId("runs-v2").textContent()}`;
  expect(/^1 \(1 ok\) 0$|^0 1 \(1 ok\)$/.test(runs), `one version counts the run (${runs})`);
  await p.screenshot({ path: `${SHOTS}/prompt.png` });
});

check("runs the platform as its operator: plan, credit, suspension, erasure, domains and the pool", async (browser) => {
  const slug = `e2e-op-${Date.now().toString(36)}`;
  const made = await makeWorkspace(PLATFORM, { slug, name: "Operator Target", email: `owner@${slug}.test`, password: WS.password }, "free");
  const p = await page(browser);
  await p.goto(PLATFORM);
  await p.getByRole("link", { name: "Operator sign-in" }).click();
  await p.getByLabel("Operator token").fill("pat_wrong");
  await p.getByRole("button", { name: "Sign in" }).click();
  await p.getByRole("alert").waitFor();
  await p.getByLabel("Operator token").fill(devVar("PLATFORM_ADMIN_TOKEN"));
  await p.getByRole("button", { name: "Sign in" }).click();
  // (Erasure frees the slug: the tombstone's row is then found by the tenant's id.)
  const row = p.getByRole("table", { name: "Tenants" }).getByRole("row").filter({ hasText: new RegExp(`${slug}|${made.tenant.id}`) });
  await row.waitFor();
  // Where its data lives: its database, its shard (the only one here), its jurisdiction.
  await row.getByText(/TENANT_DB_\d{4} · shard s1 · default/).waitFor();
  await row.getByLabel("Plan of Operator Target").selectOption({ label: "Enterprise" });
  await p.getByRole("list", { name: "Plans" }).getByRole("listitem").filter({ hasText: "Enterprise" }).getByText(/[1-9]\d* tenants?/).waitFor();
  await row.getByRole("button", { name: "Credits of Operator Target" }).click();
  await p.getByLabel("Amount (USD)").fill("12.5");
  await p.getByLabel("Reason").fill("launch promo");
  await p.getByRole("button", { name: "Grant" }).click();
  await p.getByTestId("balance").getByText("$12.50").waitFor();
  await p.getByRole("list", { name: "Ledger of Operator Target" }).getByText("launch promo").waitFor();
  await p.getByLabel("Hostname (verified)").fill(`shop.${slug}.example.com`);
  await p.getByLabel("Tenant (id or address)").fill(slug);
  await p.getByRole("button", { name: "Attach" }).click();
  await p.getByRole("list", { name: "Domains" }).getByText(`shop.${slug}.example.com`).waitFor();
  await p.getByTestId("pool").getByText(/free of \d+ registered/).waitFor();
  await p.screenshot({ path: `${SHOTS}/operator.png` });
  await row.getByRole("button", { name: "Suspend Operator Target" }).click();
  await row.getByText("suspended").waitFor();
  // (From a page on the tenant's host: Node does not resolve *.localhost.)
  const owner = await p.context().newPage();
  await owner.goto(tenantUrl(slug));
  const refused = await owner.evaluate(async (email) => (await fetch("/v1/auth/login", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email, password: "correct horse battery" }) })).status, `owner@${slug}.test`);
  expect(refused === 403, `a suspended tenant refuses sign-in (${refused})`);
  await owner.close();
  // Erasing asks for the tenant's address typed out; then it runs to the end (its database goes back to the pool).
  await p.getByLabel("Status", { exact: true }).selectOption("");
  await row.getByText("suspended").waitFor();
  p.once("dialog", (d) => void d.accept(slug));
  await row.getByRole("button", { name: "Erase Operator Target" }).click();
  await row.getByText("erasing").waitFor();
  const erased = row.getByText("erased", { exact: true });
  for (let i = 0; i < 120 && !(await erased.count()); i++) {
    await p.waitForTimeout(500);
    await p.getByRole("button", { name: "Refresh tenants" }).click();
  }
  await erased.waitFor({ timeout: 1000 });
  // The erasure took the tenant's control rows with it: its domain is gone from the list.
  await p.reload();
  await p.getByRole("heading", { name: "Custom domains" }).waitFor();
  await p.getByTestId("pool").waitFor();
  expect((await p.getByRole("list", { name: "Domains" }).getByText(`shop.${slug}.example.com`).count()) === 0, "the erased tenant's domain is detached");
});

check("passes axe on every page, on a phone and a desktop, with nothing wider than the screen", async (browser) => {
  const owner = await signedIn(browser);
  const made = await inPage<Record<string, string>>(
    owner,
    `const project = await call("/v1/projects", { name: "Every page " + Date.now().toString(36) });
     const conversation = await call("/v1/conversations", { project_id: project.id, title: "Kickoff" });
     const agent = await call("/v1/agents", { project_id: project.id, name: "Writer" });
     const run = await call("/v1/runs", { agent_id: agent.id, project_id: project.id, input: { text: "hello" } });
     const post = await call("/v1/posts", { project_id: project.id, title: "Checked post", variants: [{ channel: "linkedin", text: "Hello" }] });
     const kb = await call("/v1/knowledge-bases", { project_id: project.id, name: "Checked base" });
     const key = "checked-" + Date.now().toString(36);
     await call("/v1/prompts/" + key + "/versions", { template: "Be kind." });
     const endpoint = await call("/v1/webhooks/endpoints", { url: "${PLATFORM}/v1/not-a-receiver", event_types: ["webhook.test"] });
     const res = await fetch("/v1/artifacts?project_id=" + project.id + "&kind=document&name=notes.txt", { method: "POST", headers: { authorization: "Bearer " + JSON.parse(sessionStorage.getItem("tessera.session")).accessToken, "content-type": "text/plain" }, body: "Some notes." });
     const artifact = await res.json();
     return { project: project.id, conversation: conversation.id, run: run.id, post: post.id, kb: kb.id, key, endpoint: endpoint.id, artifact: artifact.id };`,
  );
  const pages = [
    "/projects",
    `/projects/${made.project}`,
    `/projects/${made.project}/content`,
    `/projects/${made.project}/calendar`,
    `/projects/${made.project}/knowledge`,
    `/projects/${made.project}/conversations/${made.conversation}`,
    `/runs/${made.run}`,
    `/artifacts/${made.artifact}`,
    `/posts/${made.post}`,
    `/knowledge/${made.kb}`,
    "/prompts",
    `/prompts/${made.key}`,
    "/usage",
    "/team",
    "/webhooks",
    `/webhooks/${made.endpoint}`,
    "/audit",
    "/compliance",
    "/no-such-page",
  ];
  const axe = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
  const problems: string[] = [];
  for (const viewport of [{ width: 390, height: 844 }, { width: 1280, height: 800 }]) {
    await owner.setViewportSize(viewport);
    for (const path of pages) {
      await owner.goto(tenantUrl(WS.slug, path));
      await owner.locator("main h1").first().waitFor();
      await owner.waitForFunction(() => document.querySelectorAll(".loading").length === 0, null, { timeout: 15_000 });
      await owner.addScriptTag({ content: axe });
      const found = await owner.evaluate(async () => {
        const results = await (window as unknown as { axe: { run: (o: unknown) => Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }> } }).axe.run({ resultTypes: ["violations"] });
        return { violations: results.violations.map((v) => `${v.id} (${v.impact}) at ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`), wide: document.documentElement.scrollWidth - window.innerWidth };
      });
      for (const v of found.violations) problems.push(`${viewport.width}px ${path}: ${v}`);
      if (found.wide > 1) problems.push(`${viewport.width}px ${path}: ${found.wide}px wider than the screen`);
    }
  }
  expect(problems.length === 0, `every page is clean:\n${problems.join("\n")}`);
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
let chosen = checks;
try {
  await dev.ready();
  await eraseWorkspaces(PLATFORM, "e2e-");
  await makeWorkspace(PLATFORM, { slug: WS.slug, name: "E2E Workspace", email: WS.email, password: WS.password });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  // E2E_ONLY=regex runs the checks whose names match (while building one page).
  const only = process.env.E2E_ONLY ? new RegExp(process.env.E2E_ONLY, "i") : null;
  chosen = checks.filter((x) => !only || only.test(x.name));
  for (const c of chosen) {
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
  await eraseWorkspaces(PLATFORM, "e2e-");
} catch (err) {
  failed++;
  console.error(err);
}
dev.stop();
console.log(failed ? `\n${failed} of ${chosen.length} failed` : `\nall ${chosen.length} passed`);
process.exit(failed ? 1 : 0);
