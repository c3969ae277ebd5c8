import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { randomBytes, webcrypto } from "node:crypto";

/** Reads `.dev.vars` (KEY='value' lines) into an object. */
export function readDevVars(path = ".dev.vars"): Record<string, string> {
  if (!existsSync(path)) return {};
  const vars: Record<string, string> = {};
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) vars[m[1]!] = m[2]!.replace(/^'(.*)'$/, "$1");
  }
  return vars;
}

/** A fresh ES256 private JWK with a kid, as JWT_PRIVATE_KEY wants it. */
export async function newSigningKey(): Promise<string> {
  const pair = await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const jwk = await webcrypto.subtle.exportKey("jwk", pair.privateKey);
  return JSON.stringify({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, d: jwk.d, kid: `k_${randomBytes(6).toString("hex")}` });
}

/** Creates `.dev.vars` with random secrets on first run; later runs keep what is there. */
export async function ensureDevVars(path = ".dev.vars"): Promise<Record<string, string>> {
  const vars = readDevVars(path);
  let changed = false;
  const fill = async (key: string, make: () => string | Promise<string>) => {
    if (!vars[key]) {
      vars[key] = await make();
      changed = true;
    }
  };
  await fill("JWT_PRIVATE_KEY", newSigningKey);
  await fill("PLATFORM_ADMIN_TOKEN", () => `pat_${randomBytes(24).toString("base64url")}`);
  await fill("DEMO_OWNER_PASSWORD", () => randomBytes(12).toString("base64url"));
  await fill("SECRETS_KEY", () => randomBytes(32).toString("base64"));
  if (changed) {
    // Single quotes: dotenv keeps such values literal, so the JWK's double quotes survive.
    const body = Object.entries(vars).map(([k, v]) => `${k}='${v}'`).join("\n");
    writeFileSync(path, `# Local secrets for wrangler dev, made by npm run dev. Not committed.\n${body}\n`, { mode: 0o600 });
    console.log(`created ${path} with fresh secrets`);
  }
  return vars;
}
