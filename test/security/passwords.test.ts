import { describe, expect, it } from "vitest";
import { ACCOUNT_FAILURES } from "../../src/auth/attempts";
import { call, createTenant, expectProblem, expectStatus, PASSWORD } from "../harness";

// Finding 3 of issue 9: a password can only be guessed as slowly as the account allows, whatever the route.
describe("failed sign-ins per account", () => {
  it("refuses an account's logins after its failures, even with the right password, and says when to retry", async () => {
    const t = await createTenant();
    const login = (password: string, ip: string) => call(`${t.host}/v1/auth/login`, { headers: { "cf-connecting-ip": ip }, body: { email: t.owner.email, password } });
    for (let i = 0; i < ACCOUNT_FAILURES.limit; i++) expectProblem(await login(`wrong guess ${i}`, `203.0.113.${i + 1}`), 401, "INVALID_CREDENTIALS");
    const locked = await login(PASSWORD, "198.51.100.1");
    expectProblem(locked, 429, "TOO_MANY_LOGIN_ATTEMPTS");
    expect(Number(locked.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(Number(locked.headers.get("retry-after"))).toBeLessThanOrEqual(ACCOUNT_FAILURES.windowSeconds);
    // The owner sees the attempts, wherever they came from.
    const events = await call(`${t.host}/v1/me/security-events?limit=100`, { token: t.owner.token });
    expectStatus(events, 200);
    expect(events.body.data.filter((e: { kind: string }) => e.kind === "login_failed")).toHaveLength(ACCOUNT_FAILURES.limit);
    expect(events.body.data[0]).toMatchObject({ tenant: { id: t.id, slug: t.slug }, client_address: "203.0.113.10" });
  });

  it("answers an unknown email exactly as a known one, lockout included", async () => {
    const t = await createTenant();
    const email = `nobody-${crypto.randomUUID().slice(0, 8)}@example.test`;
    const results = [];
    for (let i = 0; i <= ACCOUNT_FAILURES.limit; i++) results.push(await call(`${t.host}/v1/auth/login`, { body: { email, password: "wrong guess" } }));
    expect(results.slice(0, ACCOUNT_FAILURES.limit).map((r) => r.body.code)).toEqual(Array(ACCOUNT_FAILURES.limit).fill("INVALID_CREDENTIALS"));
    expectProblem(results.at(-1)!, 429, "TOO_MANY_LOGIN_ATTEMPTS");
  });

  it("does not count a successful login", async () => {
    const t = await createTenant();
    for (let i = 0; i < ACCOUNT_FAILURES.limit + 2; i++) {
      expectStatus(await call(`${t.host}/v1/auth/login`, { body: { email: t.owner.email, password: PASSWORD } }), 200);
    }
  });
});

describe("an invitation to an existing account", () => {
  it("is not a password oracle: each wrong guess spends the invitation, counts for the account, and the victim sees it", async () => {
    const victim = await createTenant();
    const attacker = await createTenant();
    const invite = async () => {
      const inv = await call(`${attacker.host}/v1/invitations`, { token: attacker.owner.token, body: { email: victim.owner.email, role: "viewer" } });
      expectStatus(inv, 201);
      return inv.body.token as string;
    };
    const guess = (token: string, password: string) => call(`${attacker.host}/v1/invitations/${token}/accept`, { body: { name: "x", password }, headers: { "cf-connecting-ip": "203.0.113.99" } });

    const first = await invite();
    expectProblem(await guess(first, "wrong guess 0"), 401, "INVALID_CREDENTIALS");
    // The same invitation cannot take a second guess, not even the right one.
    expectProblem(await guess(first, PASSWORD), 404, "NOT_FOUND");
    for (let i = 1; i < ACCOUNT_FAILURES.limit; i++) expectProblem(await guess(await invite(), `wrong guess ${i}`), 401, "INVALID_CREDENTIALS");
    // Now even the right password is refused, through an invitation and at the victim's own login.
    const locked = await guess(await invite(), PASSWORD);
    expectProblem(locked, 429, "TOO_MANY_LOGIN_ATTEMPTS");
    expect(Number(locked.headers.get("retry-after"))).toBeGreaterThan(0);
    expectProblem(await call(`${victim.host}/v1/auth/login`, { body: { email: victim.owner.email, password: PASSWORD } }), 429, "TOO_MANY_LOGIN_ATTEMPTS");
    // The victim was not enrolled, and sees every attempt, naming the tenant it came from.
    const members = await call(`${attacker.host}/v1/members`, { token: attacker.owner.token });
    expect(members.body.data.map((m: { user_id: string }) => m.user_id)).not.toContain(victim.owner.id);
    const events = await call(`${victim.host}/v1/me/security-events?limit=100`, { token: victim.owner.token });
    const tried = events.body.data.filter((e: { kind: string }) => e.kind === "invitation_accept_failed");
    expect(tried).toHaveLength(ACCOUNT_FAILURES.limit);
    expect(tried[0]).toMatchObject({ tenant: { id: attacker.id, slug: attacker.slug }, client_address: "203.0.113.99" });
    // The attacker's audit log records each spent invitation.
    const audit = await call(`${attacker.host}/v1/audit-log?action=invitation.spent&limit=100`, { token: attacker.owner.token });
    expect(audit.body.data).toHaveLength(ACCOUNT_FAILURES.limit);
  });

  it("shows a successful acceptance in the account's security events", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const inv = await call(`${b.host}/v1/invitations`, { token: b.owner.token, body: { email: a.owner.email, role: "viewer" } });
    expectStatus(await call(`${b.host}/v1/invitations/${inv.body.token}/accept`, { body: { name: "A", password: PASSWORD } }), 200);
    const events = await call(`${a.host}/v1/me/security-events`, { token: a.owner.token });
    expect(events.body.data[0]).toMatchObject({ kind: "invitation_accepted", tenant: { id: b.id } });
  });
});
