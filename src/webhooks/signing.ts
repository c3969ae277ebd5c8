/**
 * Standard Webhooks signing: a secret is `whsec_` and the base64 of its key bytes; a signature is
 * `v1,` and the base64 HMAC-SHA256, under that key, of `{webhook-id}.{webhook-timestamp}.{body}`.
 */

/** Key bytes per secret (the standard allows 24 to 64). */
const SECRET_BYTES = 32;
const PREFIX = "whsec_";

const base64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));

/** A fresh signing secret. */
export function newSecret(): string {
  return PREFIX + base64(crypto.getRandomValues(new Uint8Array(SECRET_BYTES)));
}

function keyBytes(secret: string): Uint8Array {
  const raw = atob(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret);
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

/** Imported keys by secret, so a batch of deliveries to one endpoint imports its key once. */
const keys = new Map<string, Promise<CryptoKey>>();

function keyOf(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    if (keys.size >= 1000) keys.delete(keys.keys().next().value!);
    key = crypto.subtle.importKey("raw", keyBytes(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    keys.set(secret, key);
  }
  return key;
}

/** `v1,<signature>` of one delivery under one secret. */
export async function sign(secret: string, id: string, timestamp: number, body: string): Promise<string> {
  const key = await keyOf(secret);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${id}.${timestamp}.${body}`));
  return `v1,${base64(new Uint8Array(mac))}`;
}

/** The `webhook-signature` header: one signature per live secret, space-separated (two during a rotation's overlap). */
export async function signatures(secrets: string[], id: string, timestamp: number, body: string): Promise<string> {
  return (await Promise.all(secrets.map((s) => sign(s, id, timestamp, body)))).join(" ");
}
