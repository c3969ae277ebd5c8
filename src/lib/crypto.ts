const encoder = new TextEncoder();

/** Hex of bytes. */
export function toHex(bytes: ArrayBuffer | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let out = "";
  for (const b of view) out += b.toString(16).padStart(2, "0");
  return out;
}

function fromHex(hex: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** base64url of bytes, no padding. */
export function toBase64Url(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** A random secret of `bytes` bytes as base64url. */
export function randomSecret(bytes = 32): string {
  return toBase64Url(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** SHA-256 hex of a string: how API keys, refresh tokens and invitation tokens are stored. */
export async function sha256Hex(value: string): Promise<string> {
  return toHex(await crypto.subtle.digest("SHA-256", encoder.encode(value)));
}

/** Constant-time comparison of two strings (length leaks, content does not). */
export function timingSafeEqualString(a: string, b: string): boolean {
  const ab = encoder.encode(a);
  const bb = encoder.encode(b);
  if (ab.byteLength !== bb.byteLength) {
    // Compare b with itself so the time spent does not depend on where a differs.
    crypto.subtle.timingSafeEqual(bb, bb);
    return false;
  }
  return crypto.subtle.timingSafeEqual(ab, bb);
}

/** Workers cap PBKDF2 at 100,000 iterations; anything higher throws NotSupportedError. */
export const PBKDF2_ITERATIONS = 100_000;

async function pbkdf2(password: string, salt: Uint8Array<ArrayBuffer>, iterations: number): Promise<Uint8Array> {
  // NFKC, as NIST SP 800-63B asks, so the same password typed on two keyboards is the same bytes.
  const key = await crypto.subtle.importKey("raw", encoder.encode(password.normalize("NFKC")), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, key, 256);
  return new Uint8Array(bits);
}

/** `pbkdf2-sha256$iterations$salt$hash` (hex), with a fresh 16-byte salt per user. */
export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const hash = await pbkdf2(password, salt, PBKDF2_ITERATIONS);
  return `pbkdf2-sha256$${PBKDF2_ITERATIONS}$${toHex(salt)}$${toHex(hash)}`;
}

// Verified against when the user does not exist, so an unknown email costs as much as a wrong password.
const DUMMY_HASH = `pbkdf2-sha256$${PBKDF2_ITERATIONS}$${"00".repeat(16)}$${"00".repeat(32)}`;

/** Checks a password against a stored hash in constant time; `stored` undefined burns the same time and fails. */
export async function verifyPassword(password: string, stored: string | undefined): Promise<boolean> {
  const [scheme, iter, saltHex, hashHex] = (stored ?? DUMMY_HASH).split("$");
  if (scheme !== "pbkdf2-sha256" || !iter || !saltHex || !hashHex) return false;
  const actual = await pbkdf2(password, fromHex(saltHex), Number(iter));
  const expected = fromHex(hashHex);
  if (actual.byteLength !== expected.byteLength) return false;
  const same = crypto.subtle.timingSafeEqual(actual, expected);
  return stored !== undefined && same;
}

const keys = new Map<string, Promise<CryptoKey>>();
/** The AES-256-GCM key of a base64 secret, imported once per isolate. */
function aesKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", Uint8Array.from(atob(secret), (ch) => ch.charCodeAt(0)), "AES-GCM", false, ["encrypt", "decrypt"]);
    keys.set(secret, key);
  }
  return key;
}

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));

/**
 * Encrypts `plaintext` with AES-256-GCM under `secret` (base64 of 32 bytes); `context` (the
 * row it belongs to) is bound as additional data, so a ciphertext moved to another row does not
 * decrypt. Answers base64 of the 12-byte IV followed by the ciphertext.
 */
export async function seal(secret: string, plaintext: string, context: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: encoder.encode(context) }, await aesKey(secret), encoder.encode(plaintext)));
  const out = new Uint8Array(iv.length + sealed.length);
  out.set(iv);
  out.set(sealed, iv.length);
  return b64(out);
}

/** Decrypts what `seal` made with the same secret and context; throws if either differs or it was altered. */
export async function unseal(secret: string, sealed: string, context: string): Promise<string> {
  const bytes = Uint8Array.from(atob(sealed), (ch) => ch.charCodeAt(0));
  const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: bytes.subarray(0, 12), additionalData: encoder.encode(context) }, await aesKey(secret), bytes.subarray(12));
  return new TextDecoder().decode(plain);
}

const hmacKeys = new Map<string, Promise<CryptoKey>>();

/** HMAC-SHA256 of `message` under a base64 secret, as hex (signed links). */
export async function hmacHex(secret: string, message: string): Promise<string> {
  let key = hmacKeys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", Uint8Array.from(atob(secret), (ch) => ch.charCodeAt(0)), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    hmacKeys.set(secret, key);
  }
  return toHex(await crypto.subtle.sign("HMAC", await key, encoder.encode(message)));
}
