import { CompactSign, type CryptoKey, type JWK, SignJWT, errors as joseErrors, importJWK, jwtVerify, decodeProtectedHeader } from "jose";
import { z } from "@hono/zod-openapi";
import { TtlCache } from "../lib/ttl-cache";
import { ROLES, type Role } from "./permissions";

/** Access tokens live ten minutes: role changes and removals reach every token within that. */
export const ACCESS_TOKEN_TTL_SECONDS = 600;
const ALG = "ES256";
/** Clock skew allowed between the signer and the verifier, in seconds. */
const CLOCK_TOLERANCE_SECONDS = 30;

/** The claims an access token carries, checked after the signature. */
const AccessClaims = z.object({
  sub: z.string().startsWith("usr_"),
  tid: z.string().startsWith("ten_"),
  role: z.enum(ROLES),
});

export interface AccessToken {
  userId: string;
  tenantId: string;
  role: Role;
}

interface KeyRing {
  source: string;
  kid: string;
  privateKey: CryptoKey;
  /** Public keys by kid: the current one and any still honoured after a rotation. */
  publicKeys: Map<string, CryptoKey>;
  jwks: { keys: JWK[] };
}

let ring: KeyRing | undefined;

// Verified tokens by their exact text: a signature already checked need not be checked again
// on this isolate's next request. Entries never outlive the token's own expiry.
const verified = new TtlCache<AccessToken & { exp: number }>(10_000);

const PrivateJwk = z.object({ kty: z.literal("EC"), crv: z.literal("P-256"), kid: z.string().min(1), d: z.string(), x: z.string(), y: z.string() });

/** Imports the signing key (and previous public keys) once per isolate. */
async function keyRing(privateJwkJson: string, previousPublic: string | undefined): Promise<KeyRing> {
  const source = `${privateJwkJson}\n${previousPublic ?? ""}`;
  if (ring?.source === source) return ring;
  const priv = PrivateJwk.parse(JSON.parse(privateJwkJson));
  const { d: _d, ...pub } = priv;
  const publicJwks: JWK[] = [{ ...pub, alg: ALG, use: "sig" }];
  if (previousPublic) publicJwks.push(...(JSON.parse(previousPublic) as JWK[]));
  const publicKeys = new Map<string, CryptoKey>();
  for (const jwk of publicJwks) {
    if (jwk.kid) publicKeys.set(jwk.kid, (await importJWK(jwk, ALG)) as CryptoKey);
  }
  ring = {
    source,
    kid: priv.kid,
    privateKey: (await importJWK({ ...priv, alg: ALG }, ALG)) as CryptoKey,
    publicKeys,
    jwks: { keys: publicJwks },
  };
  return ring;
}

export interface TokenConfig {
  privateKey: string;
  previousPublicKeys?: string;
  issuer: string;
}

/** The audience naming one tenant: a token is good only on that tenant's hosts. */
export function tenantAudience(tenantId: string): string {
  return `tessera:tenant:${tenantId}`;
}

/** Signs a short-lived ES256 access token for a member of a tenant. */
export async function signAccessToken(cfg: TokenConfig, token: AccessToken): Promise<string> {
  const keys = await keyRing(cfg.privateKey, cfg.previousPublicKeys);
  return new SignJWT({ tid: token.tenantId, role: token.role })
    .setProtectedHeader({ alg: ALG, kid: keys.kid, typ: "at+jwt" })
    .setSubject(token.userId)
    .setIssuer(cfg.issuer)
    .setAudience(tenantAudience(token.tenantId))
    .setIssuedAt()
    .setExpirationTime(`${ACCESS_TOKEN_TTL_SECONDS}s`)
    .sign(keys.privateKey);
}

/**
 * Verifies an access token for the tenant at the request's host. The algorithm, issuer
 * and audience are pinned; any failure (bad signature, `alg: none`, unknown kid, expiry,
 * another tenant) is null, never an exception.
 */
export async function verifyAccessToken(cfg: TokenConfig, jwt: string, tenantId: string): Promise<(AccessToken & { exp: number }) | null> {
  const hit = verified.get(jwt);
  if (hit && hit.exp * 1000 > Date.now()) {
    return hit.tenantId === tenantId ? hit : null;
  }
  const keys = await keyRing(cfg.privateKey, cfg.previousPublicKeys);
  let kid: string | undefined;
  try {
    kid = decodeProtectedHeader(jwt).kid;
  } catch {
    return null;
  }
  const key = kid ? keys.publicKeys.get(kid) : undefined;
  if (!key) return null;
  try {
    const { payload } = await jwtVerify(jwt, key, {
      algorithms: [ALG],
      issuer: cfg.issuer,
      audience: tenantAudience(tenantId),
      typ: "at+jwt",
      requiredClaims: ["exp", "iat", "sub"],
      // Refuses an `iat` in the future (beyond the tolerance) and a token older than any we issue.
      maxTokenAge: ACCESS_TOKEN_TTL_SECONDS,
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
    });
    const claims = AccessClaims.safeParse(payload);
    if (!claims.success || claims.data.tid !== tenantId) return null;
    const token = { userId: claims.data.sub, tenantId: claims.data.tid, role: claims.data.role, exp: payload.exp! };
    verified.set(jwt, token, payload.exp! * 1000 - Date.now());
    return token;
  } catch (err) {
    if (err instanceof joseErrors.JOSEError) return null;
    throw err;
  }
}

/** The public JWKS served at `/.well-known/jwks.json`. */
export async function publicJwks(cfg: TokenConfig): Promise<{ keys: JWK[] }> {
  return (await keyRing(cfg.privateKey, cfg.previousPublicKeys)).jwks;
}

/** The media type of a signed erasure receipt: a JWS over the receipt's JSON. */
export const RECEIPT_TYPE = "tessera-erasure-receipt+jws";

/**
 * Signs a document (an erasure receipt) with the platform's current key: a compact JWS whose
 * payload is the document's JSON, verifiable by anyone with the JWKS at `/.well-known/jwks.json`.
 */
export async function signDocument(cfg: TokenConfig, document: unknown): Promise<string> {
  const keys = await keyRing(cfg.privateKey, cfg.previousPublicKeys);
  return new CompactSign(new TextEncoder().encode(JSON.stringify(document))).setProtectedHeader({ alg: ALG, kid: keys.kid, typ: RECEIPT_TYPE }).sign(keys.privateKey);
}
