import { env } from "cloudflare:test";
import { base64url, decodeJwt, SignJWT, importJWK, type JWK } from "jose";
import { describe, expect, it } from "vitest";
import { publicJwks, verifyAccessToken } from "../../src/auth/tokens";
import { call, createTenant, expectProblem, expectStatus, PASSWORD, PLATFORM } from "../harness";

const privateJwk = () => JSON.parse(env.JWT_PRIVATE_KEY) as JWK & { kid: string };

/** Signs arbitrary claims with the platform's real key, to vary one thing at a time. */
async function forge(claims: Record<string, unknown>, opts: { exp?: string | number; aud?: string; iss?: string; kid?: string } = {}) {
  const jwk = privateJwk();
  const key = await importJWK({ ...jwk, alg: "ES256" }, "ES256");
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "ES256", kid: opts.kid ?? jwk.kid, typ: "at+jwt" })
    .setIssuer(opts.iss ?? "https://localhost")
    .setAudience(opts.aud ?? `tessera:tenant:${String(claims.tid)}`)
    .setIssuedAt()
    .setExpirationTime(opts.exp ?? "5m")
    .sign(key);
}

const login = (host: string, email: string, password: string) => call(`${host}/v1/auth/login`, { body: { email, password } });

describe("login, refresh, logout", () => {
  it("logs a member in and names user, tenant and role in the token", async () => {
    const t = await createTenant();
    const res = await login(t.host, t.owner.email.toUpperCase(), PASSWORD);
    expectStatus(res, 200);
    const claims = decodeJwt(res.body.access_token);
    expect(claims).toMatchObject({ sub: t.owner.id, tid: t.id, role: "owner", iss: "https://localhost", aud: `tessera:tenant:${t.id}` });
    expect(claims.exp! - claims.iat!).toBe(600);
    expectStatus(await call(`${t.host}/v1/me`, { token: res.body.access_token }), 200);
  });

  it("gives the same 401 for a wrong password, an unknown email and a non-member", async () => {
    const a = await createTenant();
    const b = await createTenant();
    expectProblem(await login(a.host, a.owner.email, "wrong password!"), 401, "INVALID_CREDENTIALS");
    expectProblem(await login(a.host, "nobody@nowhere.test", PASSWORD), 401, "INVALID_CREDENTIALS");
    expectProblem(await login(a.host, b.owner.email, PASSWORD), 401, "INVALID_CREDENTIALS");
  });

  it("rotates the refresh token on every use", async () => {
    const t = await createTenant();
    const first = await call(`${t.host}/v1/auth/refresh`, { body: { refresh_token: t.owner.refresh } });
    expectStatus(first, 200);
    expect(first.body.refresh_token).not.toBe(t.owner.refresh);
    const second = await call(`${t.host}/v1/auth/refresh`, { body: { refresh_token: first.body.refresh_token } });
    expectStatus(second, 200);
    expectStatus(await call(`${t.host}/v1/me`, { token: second.body.access_token }), 200);
  });

  it("revokes the whole family when a spent refresh token comes back", async () => {
    const t = await createTenant();
    const next = await call(`${t.host}/v1/auth/refresh`, { body: { refresh_token: t.owner.refresh } });
    expectStatus(next, 200);
    // The attacker replays the first token: refused, and the legitimate holder's newer token dies with it.
    expectProblem(await call(`${t.host}/v1/auth/refresh`, { body: { refresh_token: t.owner.refresh } }), 401, "REFRESH_TOKEN_REUSED");
    expectProblem(await call(`${t.host}/v1/auth/refresh`, { body: { refresh_token: next.body.refresh_token } }), 401, "INVALID_TOKEN");
    // Other logins of the same user are separate families and survive.
    const other = await login(t.host, t.owner.email, PASSWORD);
    expectStatus(await call(`${t.host}/v1/auth/refresh`, { body: { refresh_token: other.body.refresh_token } }), 200);
  });

  it("lets only one of two racing refreshes with the same token win", async () => {
    const t = await createTenant();
    const results = await Promise.all([0, 1, 2].map(() => call(`${t.host}/v1/auth/refresh`, { body: { refresh_token: t.owner.refresh } })));
    expect(results.filter((r) => r.status === 200).length).toBeLessThanOrEqual(1);
    expect(results.filter((r) => r.status === 401).length).toBeGreaterThanOrEqual(2);
  });

  it("refuses a refresh token on another tenant's host", async () => {
    const a = await createTenant();
    const b = await createTenant();
    expectProblem(await call(`${b.host}/v1/auth/refresh`, { body: { refresh_token: a.owner.refresh } }), 401, "INVALID_TOKEN");
    expectStatus(await call(`${a.host}/v1/auth/refresh`, { body: { refresh_token: a.owner.refresh } }), 200);
  });

  it("ends the login on logout", async () => {
    const t = await createTenant();
    const out = await call(`${t.host}/v1/auth/logout`, { body: { refresh_token: t.owner.refresh } });
    expectStatus(out, 204);
    expectProblem(await call(`${t.host}/v1/auth/refresh`, { body: { refresh_token: t.owner.refresh } }), 401, "INVALID_TOKEN");
  });
});

describe("access token attacks", () => {
  it("accepts a well-formed forged-by-us token, so the cases below vary one thing", async () => {
    const t = await createTenant();
    expectStatus(await call(`${t.host}/v1/me`, { token: await forge({ sub: t.owner.id, tid: t.id, role: "owner" }) }), 200);
  });

  it("refuses a missing or malformed Authorization header", async () => {
    const t = await createTenant();
    const none = await call(`${t.host}/v1/projects`);
    expectProblem(none, 401, "UNAUTHENTICATED");
    expect(none.headers.get("www-authenticate")).toContain("Bearer");
    expectProblem(await call(`${t.host}/v1/projects`, { headers: { authorization: "Basic abc" } }), 401, "UNAUTHENTICATED");
    expectProblem(await call(`${t.host}/v1/projects`, { token: "not-a-jwt" }), 401, "INVALID_TOKEN");
  });

  it("refuses a tampered signature and a tampered payload", async () => {
    const t = await createTenant();
    const [h, p, s] = t.owner.token.split(".") as [string, string, string];
    const flipped = s.slice(0, -2) + (s.at(-2) === "A" ? "B" : "A") + s.at(-1);
    expectProblem(await call(`${t.host}/v1/me`, { token: `${h}.${p}.${flipped}` }), 401, "INVALID_TOKEN");
    const payload = JSON.parse(new TextDecoder().decode(base64url.decode(p)));
    const escalated = base64url.encode(JSON.stringify({ ...payload, role: "owner", sub: "usr_someoneelse" }));
    expectProblem(await call(`${t.host}/v1/me`, { token: `${h}.${escalated}.${s}` }), 401, "INVALID_TOKEN");
  });

  it('refuses alg "none"', async () => {
    const t = await createTenant();
    const header = base64url.encode(JSON.stringify({ alg: "none", kid: privateJwk().kid, typ: "at+jwt" }));
    const payload = t.owner.token.split(".")[1];
    expectProblem(await call(`${t.host}/v1/me`, { token: `${header}.${payload}.` }), 401, "INVALID_TOKEN");
  });

  it("refuses HS256 signed with the public key (algorithm confusion)", async () => {
    const t = await createTenant();
    const { d: _d, ...pub } = privateJwk();
    const secret = new TextEncoder().encode(JSON.stringify(pub));
    const token = await new SignJWT({ tid: t.id, role: "owner" })
      .setProtectedHeader({ alg: "HS256", kid: pub.kid, typ: "at+jwt" })
      .setSubject(t.owner.id)
      .setIssuer("https://localhost")
      .setAudience(`tessera:tenant:${t.id}`)
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(secret);
    expectProblem(await call(`${t.host}/v1/me`, { token }), 401, "INVALID_TOKEN");
  });

  it("refuses an expired token, a wrong issuer, a wrong audience and an unknown kid", async () => {
    const t = await createTenant();
    const claims = { sub: t.owner.id, tid: t.id, role: "owner" };
    expectProblem(await call(`${t.host}/v1/me`, { token: await forge(claims, { exp: Math.floor(Date.now() / 1000) - 60 }) }), 401, "INVALID_TOKEN");
    expectProblem(await call(`${t.host}/v1/me`, { token: await forge(claims, { iss: "https://evil.example" }) }), 401, "INVALID_TOKEN");
    expectProblem(await call(`${t.host}/v1/me`, { token: await forge(claims, { aud: "tessera:tenant:ten_other" }) }), 401, "INVALID_TOKEN");
    expectProblem(await call(`${t.host}/v1/me`, { token: await forge(claims, { kid: "k_unknown" }) }), 401, "INVALID_TOKEN");
  });

  it("refuses a token of another tenant, even one whose claims were edited to match", async () => {
    const a = await createTenant();
    const b = await createTenant();
    expectProblem(await call(`${b.host}/v1/projects`, { token: a.owner.token }), 401, "INVALID_TOKEN");
    // Same audience as b but tid of a: refused because claims and audience disagree.
    expectProblem(await call(`${b.host}/v1/me`, { token: await forge({ sub: a.owner.id, tid: a.id, role: "owner" }, { aud: `tessera:tenant:${b.id}` }) }), 401, "INVALID_TOKEN");
  });

  it("publishes the public signing key, without its private part", async () => {
    const res = await call(`${PLATFORM}/.well-known/jwks.json`);
    expectStatus(res, 200);
    expect(res.body.keys).toHaveLength(1);
    expect(res.body.keys[0]).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig", kid: privateJwk().kid });
    expect(res.body.keys[0].d).toBeUndefined();
  });
});

describe("signing key rotation", () => {
  it("accepts tokens of a previous key listed in JWT_PREVIOUS_PUBLIC_KEYS, and no others", async () => {
    const t = await createTenant();
    const old = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
    const oldPublic = { ...((await crypto.subtle.exportKey("jwk", old.publicKey)) as JWK), kid: "k_old", alg: "ES256" };
    const oldToken = await new SignJWT({ tid: t.id, role: "owner" })
      .setProtectedHeader({ alg: "ES256", kid: "k_old", typ: "at+jwt" })
      .setSubject(t.owner.id)
      .setIssuer("https://localhost")
      .setAudience(`tessera:tenant:${t.id}`)
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(old.privateKey);
    const base = { privateKey: env.JWT_PRIVATE_KEY, issuer: "https://localhost" };
    expect(await verifyAccessToken(base, oldToken, t.id)).toBeNull();
    const rotated = { ...base, previousPublicKeys: JSON.stringify([oldPublic]) };
    expect(await verifyAccessToken(rotated, oldToken, t.id)).toMatchObject({ userId: t.owner.id, tenantId: t.id, role: "owner", exp: expect.any(Number) });
    expect((await publicJwks(rotated)).keys.map((k) => k.kid)).toEqual([privateJwk().kid, "k_old"]);
    expect(await verifyAccessToken(rotated, t.owner.token, t.id)).not.toBeNull();
  });
});

describe("passwords", () => {
  it("treats a password typed in another Unicode form as the same password", async () => {
    const slug = `u-${crypto.randomUUID().slice(0, 8)}`;
    const composed = "café crème brûlée"; // NFC
    const decomposed = composed.normalize("NFD");
    expect(decomposed).not.toBe(composed);
    const res = await call(`${PLATFORM}/v1/signup`, { body: { tenant: { name: "U", slug }, user: { email: `u@${slug}.test`, password: composed, name: "U" } } });
    expectStatus(res, 201);
    expectStatus(await call(`http://${slug}.localhost/v1/auth/login`, { body: { email: `u@${slug}.test`, password: decomposed } }), 200);
  });

  it("stores a salted PBKDF2 hash, never the password", async () => {
    const t = await createTenant();
    const row = await env.CONTROL_DB.prepare("SELECT password_hash FROM users WHERE id = ?").bind(t.owner.id).first<{ password_hash: string }>();
    expect(row!.password_hash).toMatch(/^pbkdf2-sha256\$100000\$[0-9a-f]{32}\$[0-9a-f]{64}$/);
    expect(row!.password_hash).not.toContain(PASSWORD);
  });
});
