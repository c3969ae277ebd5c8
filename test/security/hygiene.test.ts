import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { SignJWT, importJWK } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { call, createKey, createTenant, eventually, expectProblem, expectStatus, quota, useTokens } from "../harness";
import { createConversation } from "../conversations";
import { createAgent, deliverRun, getRun } from "../runs";

afterEach(() => vi.restoreAllMocks());

/** Every line the Worker writes to the console while `fn` runs. */
async function logsOf(fn: () => Promise<unknown>): Promise<string> {
  const lines: string[] = [];
  for (const level of ["log", "info", "warn", "error"] as const) vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(" ")));
  await fn();
  return lines.join("\n");
}

// Finding 5 of issue 9: no secret, token or key in any log line or audit entry.
describe("what the platform logs", () => {
  it("logs route patterns, never the secrets a request carries in its path, query or headers", async () => {
    const t = await createTenant();
    const inv = await call(`${t.host}/v1/invitations`, { token: t.owner.token, body: { email: "new@example.test", role: "viewer" } });
    const { key } = await createKey(t, t.owner.token, ["projects:read"]);
    const secrets = [inv.body.token, key, t.owner.token, t.owner.refresh];
    const logged = await logsOf(async () => {
      await call(`${t.host}/v1/invitations/${inv.body.token}/accept`, { body: { name: "New", password: "a long password" } });
      await call(`${t.host}/v1/projects`, { token: key });
      await call(`${t.host}/v1/conversations/cnv_x/connect?access_token=${t.owner.token}`, { headers: { upgrade: "websocket" } });
      await call(`${t.host}/v1/auth/refresh`, { body: { refresh_token: t.owner.refresh } });
      await call(`${t.host}/v1/invitations/${inv.body.token}/accept`, { body: { name: "Again", password: "a long password" } });
    });
    expect(logged).toContain('"route":"/v1/invitations/:token/accept"');
    for (const secret of secrets) expect(logged).not.toContain(secret);
    const audit = await call(`${t.host}/v1/audit-log?limit=100`, { token: t.owner.token });
    for (const secret of [...secrets, "TENANT_DB_"]) expect(audit.text).not.toContain(secret);
  });

  // Finding 8: a client that stops sending mid-upload is the client's doing.
  it("answers a client that stops mid-upload with 400 and logs it at info, without a stack", async () => {
    const t = await createTenant();
    const project = await call(`${t.host}/v1/projects`, { token: t.owner.token, body: { name: "uploads" } });
    let res: Response | undefined;
    const logged = await logsOf(async () => {
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new Uint8Array(1024));
        },
        pull(controller) {
          controller.error(new Error("client went away"));
        },
      });
      res = await SELF.fetch(`${t.host}/v1/artifacts?project_id=${project.body.id}&kind=document&name=half`, {
        method: "POST",
        headers: { authorization: `Bearer ${t.owner.token}`, "content-type": "text/plain", "content-length": "4096" },
        body,
      }).catch(() => undefined);
    });
    if (res) expect(res.status).toBe(400);
    expect(logged).not.toContain('"level":"error"');
    expect(logged).not.toContain("stack");
    const listed = await call(`${t.host}/v1/artifacts?project_id=${project.body.id}`, { token: t.owner.token });
    expect(listed.body.data).toHaveLength(0);
  });
});

// Finding 10: the smaller ones.
describe("requests at the edges of the protocol", () => {
  it("refuses a Host with userinfo, spaces or commas instead of resolving part of it", async () => {
    const a = await createTenant();
    const b = await createTenant();
    for (const host of [`${a.slug}.localhost@${b.slug}.localhost`, `${b.slug}.localhost, ${a.slug}.localhost`, `${b.slug}.localhost x`]) {
      const ctx = createExecutionContext();
      const res = await worker.fetch(new Request(`http://${b.slug}.localhost/v1/projects`, { headers: { host: host, authorization: `Bearer ${b.owner.token}` } }), env, ctx);
      await waitOnExecutionContext(ctx);
      expect(res.status, host).toBe(400);
      expect(((await res.json()) as { errors: { field: string }[] }).errors[0]!.field).toBe("host");
    }
  });

  it("refuses an access token issued in the future", async () => {
    const t = await createTenant();
    const jwk = JSON.parse(env.JWT_PRIVATE_KEY);
    const key = await importJWK({ ...jwk, alg: "ES256" }, "ES256");
    const now = Math.floor(Date.now() / 1000);
    const forged = await new SignJWT({ tid: t.id, role: "owner" })
      .setProtectedHeader({ alg: "ES256", kid: jwk.kid, typ: "at+jwt" })
      .setSubject(t.owner.id)
      .setIssuer("https://localhost")
      .setAudience(`tessera:tenant:${t.id}`)
      .setIssuedAt(now + 3600)
      .setExpirationTime(now + 3900)
      .sign(key);
    expectProblem(await call(`${t.host}/v1/projects`, { token: forged }), 401, "INVALID_TOKEN");
  });

  it("answers TRACE and other methods a path lacks with 405 and Allow", async () => {
    const t = await createTenant();
    const trace = await call(`${t.host}/v1/projects`, { method: "TRACE", token: t.owner.token });
    expectProblem(trace, 405, "METHOD_NOT_ALLOWED");
    expect(trace.headers.get("allow")).toBe("GET, HEAD, POST");
    const put = await call(`${t.host}/v1/projects/prj_x`, { method: "PUT", token: t.owner.token });
    expectProblem(put, 405, "METHOD_NOT_ALLOWED");
    expect(put.headers.get("allow")).toBe("DELETE, GET, HEAD, PATCH");
    expectProblem(await call(`${t.host}/v1/nowhere`, { method: "TRACE", token: t.owner.token }), 404, "NOT_FOUND");
  });

  it("ignores an invalid Range (last before first) and serves the whole content", async () => {
    const t = await createTenant();
    const project = await call(`${t.host}/v1/projects`, { token: t.owner.token, body: { name: "ranges" } });
    const up = await call(`${t.host}/v1/artifacts?project_id=${project.body.id}&kind=document&name=r`, {
      token: t.owner.token,
      rawBody: "0123456789",
      headers: { "content-type": "text/plain", "content-length": "10" },
    });
    expectStatus(up, 201);
    const res = await call(`${t.host}/v1/artifacts/${up.body.id}/versions/1/content`, { token: t.owner.token, headers: { range: "bytes=5-2" } });
    expectStatus(res, 200);
    expect(res.text).toBe("0123456789");
  });
});

// Findings 11–13: sizes, output limits and Retry-After.
describe("limits a model call keeps", () => {
  it("refuses a prompt that would render past its limit with a 400 naming input, and stores nothing", async () => {
    const t = await createTenant();
    const agent = await createAgent(t);
    const version = await call(`${t.host}/v1/prompts/big/versions`, { token: t.owner.token, body: { template: "{{a}}".repeat(300) } });
    expectStatus(version, 201);
    const res = await call(`${t.host}/v1/runs`, { token: t.owner.token, body: { agent_id: agent.agentId, project_id: agent.projectId, prompt_key: "big", input: { a: "x".repeat(30_000) } } });
    expectProblem(res, 400, "VALIDATION_FAILED");
    expect(res.body.errors[0].field).toBe("input");
    expect((await call(`${t.host}/v1/runs`, { token: t.owner.token })).body.data).toHaveLength(0);
  });

  it("stops the local model at max_tokens, and a run never settles more than it reserved", async () => {
    const t = await createTenant();
    const agent = await createAgent(t, { max_tokens: 8 });
    const run = await call(`${t.host}/v1/runs`, { token: t.owner.token, body: { agent_id: agent.agentId, project_id: agent.projectId, input: { text: "Tell me a long story about the sea" } } });
    expectStatus(run, 202);
    await deliverRun(t, run.body.id);
    const done = await getRun(t, run.body.id);
    expect(done.status).toBe("SUCCEEDED");
    expect(done.usage.tokens_out).toBeLessThanOrEqual(8);
    expect((await quota(t)).reserved).toBe(0);
  });

  it("stores a client_id posted twice at once one time, and leaves no reservation behind", async () => {
    const t = await createTenant();
    const conv = await createConversation(t);
    const post = () => call(`${conv.url}/messages`, { token: t.owner.token, body: { content: "once", client_id: "c-1", reply: true } });
    const [a, b] = await Promise.all([post(), post()]);
    expect(a.body.id).toBe(b.body.id);
    const replyIds = [a.body.reply_id, b.body.reply_id].filter(Boolean);
    expect(replyIds).toHaveLength(1);
    // The reply is metered after it streams: its reservation settles, and the duplicate's was given back.
    await eventually(async () => expect((await quota(t)).reserved).toBe(0));
  });

  it("answers a spent monthly quota on POST /v1/runs with Retry-After", async () => {
    const t = await createTenant();
    const agent = await createAgent(t);
    const monthly = (await env.CONTROL_DB.prepare("SELECT monthly_tokens FROM plans WHERE id = 'free'").first<{ monthly_tokens: number }>())!.monthly_tokens;
    await useTokens(t, monthly);
    const res = await call(`${t.host}/v1/runs`, { token: t.owner.token, body: { agent_id: agent.agentId, project_id: agent.projectId, input: { text: "hi" } } });
    expectProblem(res, 429, "QUOTA_EXCEEDED");
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
  });
});
