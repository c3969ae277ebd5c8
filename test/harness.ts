import { env, SELF } from "cloudflare:test";
import { poolStatus, syncPool } from "../src/db/pool";
import { drizzle } from "drizzle-orm/d1";
import { type ModelCall, reserve, settle } from "../src/billing/metering";
import * as tenantSchema from "../src/db/tenant/schema";
import { expect } from "vitest";
import { tenantBinding } from "../src/db/router";
import type { Role } from "../src/auth/permissions";

/** The platform host (BASE_DOMAIN). In-process fetches take the host from the URL. */
export const PLATFORM = "http://localhost";
export const adminToken = () => env.PLATFORM_ADMIN_TOKEN;

/** A tenant host's origin. */
export const hostOf = (slug: string) => `http://${slug}.localhost`;

export interface CallResult {
  status: number;
  headers: Headers;
  // biome-ignore lint: test bodies are checked field by field
  body: any;
  text: string;
}

/** Sends a request the way a client would and returns status, headers and the parsed body. */
export async function call(
  url: string,
  opts: { method?: string; token?: string; body?: unknown; headers?: Record<string, string>; rawBody?: BodyInit } = {},
): Promise<CallResult> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: BodyInit | undefined = opts.rawBody;
  if (opts.body !== undefined) {
    headers["content-type"] ??= "application/json";
    body = JSON.stringify(opts.body);
  }
  const res = await SELF.fetch(url, { method: opts.method ?? (body ? "POST" : "GET"), headers, body });
  const text = await res.text();
  let parsed: unknown ;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

/** Asserts a status and prints the response when it differs. */
export function expectStatus(res: CallResult, status: number) {
  expect(res.status, `${res.status} ${res.text}`).toBe(status);
}

/** Asserts an RFC 9457 problem with this status and code. */
export function expectProblem(res: CallResult, status: number, code: string) {
  expectStatus(res, status);
  expect(res.headers.get("content-type")).toContain("application/problem+json");
  expect(res.body, res.text).toMatchObject({ status, code, type: expect.any(String), title: expect.any(String), detail: expect.any(String) });
  expect(res.body.request_id).toBe(res.headers.get("x-request-id"));
}

export const uniqueSlug = (prefix = "t") => `${prefix}-${crypto.randomUUID().slice(0, 12)}`;
export const PASSWORD = "correct horse battery";

export interface TestTenant {
  id: string;
  slug: string;
  host: string;
  owner: { id: string; email: string; token: string; refresh: string };
}

let provisioning: Promise<unknown> = Promise.resolve();

/**
 * Makes sure the pool has `n` free tenant databases: migrates the next unregistered bindings and
 * registers them as the platform's sync does. One at a time, however many tests ask at once.
 */
export function ensureFreeDatabases(n = 2): Promise<void> {
  const next = provisioning.then(async () => {
    const free = (await poolStatus(env)).jurisdictions.default.free;
    if (free >= n) return;
    // A few beyond what was asked, so the next signups do not each pay for a migration; migrated by
    // the platform's own sync, through the migrations bundled with the Worker.
    await syncPool(env, { limit: n - free + 3, jurisdiction: "default" });
  });
  provisioning = next.catch(() => {});
  return next;
}

/** Signs up a fresh tenant with its owner, through the API. */
export async function createTenant(slug = uniqueSlug()): Promise<TestTenant> {
  await ensureFreeDatabases();
  const email = `owner@${slug}.test`;
  const res = await call(`${PLATFORM}/v1/signup`, { body: { tenant: { name: `Tenant ${slug}`, slug }, user: { email, password: PASSWORD, name: "Owner" } } });
  expectStatus(res, 201);
  return {
    id: res.body.tenant.id,
    slug,
    host: hostOf(slug),
    owner: { id: res.body.user.id, email, token: res.body.access_token, refresh: res.body.refresh_token },
  };
}

export interface TestMember {
  id: string;
  email: string;
  token: string;
  refresh: string;
}

/** Invites someone with `role` and accepts as them, through the API. */
export async function addMember(t: TestTenant, role: Role, email = `${role}-${crypto.randomUUID().slice(0, 8)}@example.test`, projects?: string[] | null): Promise<TestMember> {
  // A client is always limited to projects: given none, it gets a project of its own.
  const assigned = projects ?? (role === "client" ? [(await call(`${t.host}/v1/projects`, { token: t.owner.token, body: { name: "Client work" } })).body.id] : undefined);
  const inv = await call(`${t.host}/v1/invitations`, { token: t.owner.token, body: { email, role, projects: assigned } });
  expectStatus(inv, 201);
  const acc = await call(`${t.host}/v1/invitations/${inv.body.token}/accept`, { body: { name: `A ${role}`, password: PASSWORD } });
  expectStatus(acc, 200);
  return { id: acc.body.user.id, email, token: acc.body.access_token, refresh: acc.body.refresh_token };
}

/** Creates an API key with these scopes as `token`'s holder; returns the secret and id. */
export async function createKey(t: TestTenant, token: string, scopes: string[], extra: Record<string, unknown> = {}) {
  const res = await call(`${t.host}/v1/api-keys`, { token, body: { name: "test key", scopes, ...extra } });
  expectStatus(res, 201);
  return { id: res.body.id as string, key: res.body.key as string, body: res.body };
}

/** A tenant's own D1, to look at (or set up) what the API cannot show. */
export async function tenantD1(t: TestTenant): Promise<D1Database> {
  const row = await env.CONTROL_DB.prepare("SELECT db_binding FROM tenants WHERE id = ?").bind(t.id).first<{ db_binding: string }>();
  return tenantBinding(env, row!.db_binding)!;
}

const month = () => new Date().toISOString().slice(0, 7);

/** This month's quota row: tokens used and still reserved. */
export async function quota(t: TestTenant): Promise<{ used: number; reserved: number }> {
  const row = await (await tenantD1(t)).prepare("SELECT used, reserved FROM token_quota WHERE tenant_id = ? AND month = ?").bind(t.id, month()).first<{ used: number; reserved: number }>();
  return row ?? { used: 0, reserved: 0 };
}

/** Sets this month's used tokens, as a month of traffic would have. */
export async function useTokens(t: TestTenant, used: number) {
  await (await tenantD1(t))
    .prepare("INSERT INTO token_quota (tenant_id, month, used, reserved) VALUES (?, ?, ?, 0) ON CONFLICT (tenant_id, month) DO UPDATE SET used = excluded.used")
    .bind(t.id, month(), used)
    .run();
}

/**
 * Runs `check` until it stops throwing, for what lands after the response (a reply being metered,
 * a write behind waitUntil); the last failure is thrown once `timeoutMs` has passed.
 */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** Meters a model call through the one metering path (reserve, then settle), as a past call would have been. */
export async function meterCall(t: TestTenant, call: Omit<ModelCall, "tenantId" | "userId" | "apiKeyId" | "source" | "sourceId"> & Partial<ModelCall>) {
  const db = drizzle(await tenantD1(t), { schema: tenantSchema, casing: "snake_case" });
  const full: ModelCall = { tenantId: t.id, userId: t.owner.id, apiKeyId: null, source: "chat", sourceId: null, ...call };
  const ref = { tenantId: t.id, reference: `test_${crypto.randomUUID()}` };
  await db.batch(reserve(db, ref, full.tokensIn + full.tokensOut, Number.MAX_SAFE_INTEGER, { now: full.at }));
  await db.batch(settle(db, ref, full).statements);
}
