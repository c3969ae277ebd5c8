// `npm run fuzz [-- --seconds N --seed S]`: starts the platform in a local workerd and sends it
// requests generated from its own /openapi.json — as a tenant's owner on the tenant's host and
// as the platform operator on the platform host — for a bounded time. Fails on any 5xx and on any
// answer the document does not allow: an undeclared status, content type, or a body that breaks
// its schema. Requests are mostly valid (so they reach the handlers), the rest mutated.
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import RandExp from "randexp";
import { preparePlatform, startPlatform } from "./local-platform.ts";

const { values } = parseArgs({ options: { seconds: { type: "string", default: "60" }, seed: { type: "string" }, report: { type: "string" } } });
const SECONDS = Number(values.seconds);
const SEED = Number(values.seed ?? Date.now() % 1_000_000);
const TENANT = "fuzz";

// A small seeded generator (mulberry32): the same seed makes the same requests.
let state = SEED >>> 0;
function random(): number {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const chance = (p: number) => random() < p;
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));

type Schema = Record<string, unknown> & {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  enum?: unknown[];
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  additionalProperties?: boolean | Schema;
};
type Operation = {
  parameters?: { name: string; in: string; required?: boolean; schema?: Schema }[];
  requestBody?: { content: Record<string, { schema?: Schema }> };
  responses: Record<string, { content?: Record<string, { schema?: Schema }> }>;
  security?: unknown[];
};
type Doc = { paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, Schema> } };

console.log(`fuzz: seed ${SEED}, ${SECONDS} s; bundling the Worker…`);
const outdir = ".fuzz/dist";
// Signups made by the fuzzer each take a tenant database from the jurisdiction they name; with pools
// this size and signups limited per client address, a run of a few minutes drains neither (a drained
// pool is a 503 by design).
const EXTRA_DATABASES = 120;
const { mf, adminToken } = await startPlatform(
  outdir,
  Object.fromEntries(
    Array.from({ length: EXTRA_DATABASES }, (_, i) => [
      [`TENANT_DB_${String(9001 + i)}`, `fuzz-tenant-${9001 + i}`],
      [`TENANT_DB_EU_${String(9001 + i)}`, `fuzz-tenant-eu-${9001 + i}`],
    ]).flat(),
  ),
);
/** Client addresses as Cloudflare's edge sets them, so the per-address limits apply as in production. */
const CLIENTS = ["203.0.113.10", "203.0.113.11", "198.51.100.20", "2001:db8::7"];
const platform = await preparePlatform(mf, adminToken, TENANT);
const doc = (await (await mf.dispatchFetch("http://localhost/openapi.json")).json()) as Doc;

const ajv = new Ajv2020({ strict: false, allErrors: false, validateFormats: true });
addFormats.default(ajv);
// Response schemas refer to components as "#/components/…"; give them one document to resolve in.
ajv.addSchema({ $id: "doc", components: doc.components });
const compiled = new Map<string, ReturnType<typeof ajv.compile>>();
function validatorFor(schema: Schema) {
  const key = JSON.stringify(schema);
  if (!compiled.has(key)) compiled.set(key, ajv.compile(JSON.parse(key.replaceAll('"#/components/', '"doc#/components/'))));
  return compiled.get(key)!;
}

// Ids the platform handed out, by prefix, so generated paths and bodies name real objects.
const ids = new Map<string, Set<string>>();
const protectedIds = new Set([platform.tenantId, TENANT]);
function harvest(value: unknown): void {
  if (typeof value === "string") {
    const m = /^([a-z]{3})_[0-9a-hjkmnp-tv-z]{26}$/.exec(value);
    if (m && !protectedIds.has(value)) (ids.get(m[1]!) ?? ids.set(m[1]!, new Set()).get(m[1]!)!).add(value);
  } else if (Array.isArray(value)) value.forEach(harvest);
  else if (value && typeof value === "object") Object.values(value).forEach(harvest);
}
const PREFIX_OF: Record<string, string> = { projects: "prj", conversations: "cnv", agents: "agt", runs: "run", artifacts: "art", "api-keys": "key", invitations: "inv", members: "usr", tenants: "ten" };
function idFor(path: string, name: string): string {
  const segment = path.split("/").filter(Boolean).slice(0, -1).reverse().find((s) => PREFIX_OF[s]);
  const prefix = name === "userId" ? "usr" : PREFIX_OF[segment ?? ""];
  const pool = prefix ? [...(ids.get(prefix) ?? [])] : [];
  if (pool.length && chance(0.8)) return pick(pool);
  return pick(["x", "0", `${prefix ?? "abc"}_${"0".repeat(26)}`, "a".repeat(int(1, 80)), "%2e%2e", "café"]);
}

const resolve = (s: Schema): Schema => (s.$ref ? resolve(doc.components.schemas[s.$ref.split("/").pop()!]!) : s);

function stringFor(s: Schema, name: string): string {
  const min = Number(s.minLength ?? 0);
  const max = Math.min(Number(s.maxLength ?? 40), 60);
  if (s.format === "email") return `f${int(0, 1e6)}@example.test`;
  if (s.format === "date-time") return new Date(Date.now() + int(-1e9, 1e10)).toISOString();
  if (s.format === "date") return new Date(Date.now() + int(-1e9, 1e9)).toISOString().slice(0, 10);
  if (s.format === "uri") return `https://example.test/${int(0, 999)}`;
  if (/_id$|^id$/.test(name)) return idFor(`/${name.replace(/_id$/, "")}s/x`, name);
  if (typeof s.pattern === "string") {
    // A string the pattern matches (randexp, driven by the seeded generator), within the length bounds.
    const gen = new RandExp(new RegExp(s.pattern));
    gen.randInt = (from, to) => int(from, to);
    gen.max = 8;
    for (let i = 0; i < 5; i++) {
      const candidate = gen.gen();
      if (candidate.length >= min && candidate.length <= Number(s.maxLength ?? Number.POSITIVE_INFINITY)) return candidate;
    }
  }
  const alphabet = chance(0.9) ? "abcdefghijklmnopqrstuvwxyz0123456789 -_." : "{}<>\"'\\/\u00e9\u4e16\u0000%{{x}}";
  const length = int(min, Math.max(min, max));
  return Array.from({ length }, () => pick([...alphabet])).join("");
}

/** A value the schema allows (mostly), at most a few levels deep. */
function generate(schema: Schema, name = "", depth = 0): unknown {
  const s = resolve(schema);
  if (s.enum) return pick(s.enum);
  if ("const" in s) return s.const;
  const options = s.anyOf ?? s.oneOf;
  if (options) return generate(pick(options), name, depth);
  if (s.allOf) return generate(s.allOf[0]!, name, depth);
  const types = Array.isArray(s.type) ? s.type : [s.type ?? (s.properties ? "object" : "string")];
  const type = types.length > 1 && chance(0.9) ? types.find((t) => t !== "null")! : pick(types);
  switch (type) {
    case "null":
      return null;
    case "boolean":
      return chance(0.5);
    case "integer":
    case "number": {
      const lo = Number(s.minimum ?? (s.exclusiveMinimum !== undefined ? Number(s.exclusiveMinimum) + 1 : 0));
      const hi = Number(s.maximum ?? (s.exclusiveMaximum !== undefined ? Number(s.exclusiveMaximum) - 1 : lo + 100));
      const n = chance(0.8) ? lo + Math.floor(random() * (Math.min(hi, lo + 1000) - lo + 1)) : pick([lo, hi]);
      return type === "integer" ? Math.trunc(n) : n;
    }
    case "array": {
      if (depth > 3) return [];
      const min = Number(s.minItems ?? 0);
      const max = Math.min(Number(s.maxItems ?? 3), min + 3);
      return Array.from({ length: int(min, max) }, () => generate(s.items ?? {}, name, depth + 1));
    }
    case "object": {
      if (depth > 3) return {};
      const out: Record<string, unknown> = {};
      for (const [key, prop] of Object.entries(s.properties ?? {})) {
        if (s.required?.includes(key) || chance(0.5)) out[key] = generate(prop, key, depth + 1);
      }
      if (!s.properties && s.additionalProperties && chance(0.7)) out[stringFor({ maxLength: 12, minLength: 1 }, "")] = generate(s.additionalProperties === true ? {} : s.additionalProperties, "", depth + 1);
      return out;
    }
    default:
      return stringFor(s, name);
  }
}

/** A query parameter's text as the type its schema names, for checking it against that schema. */
function coerce(text: string, schema: Schema): unknown {
  const type = resolve(schema).type;
  if ((type === "integer" || type === "number") && text.trim() !== "" && !Number.isNaN(Number(text))) return Number(text);
  if (type === "boolean" && (text === "true" || text === "false")) return text === "true";
  return text;
}

/** A value made wrong on purpose: a wrong type, a missing field, an oversized or hostile string. */
// URLs past the edge's own limit (16 KB at Cloudflare) never reach the Worker; a query stays well under it.
function mutate(value: unknown, inQuery = false): unknown {
  if (value && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length && chance(0.7)) {
    const key = pick(Object.keys(value));
    const copy: Record<string, unknown> = { ...value };
    if (chance(0.4)) delete copy[key];
    else copy[key] = mutate(copy[key]);
    return copy;
  }
  return pick([null, 0, -1, 1e308, "", "x".repeat(int(100, inQuery ? 4000 : 70_000)), [], {}, true, "{{constructor}}", "\u0000", { $ne: 1 }]);
}

interface Violation {
  kind: string;
  request: string;
  status: number;
  detail: string;
}
const violations: Violation[] = [];
const statuses = new Map<number, number>();
const codes = new Map<string, number>();
let sent = 0;

const operations = Object.entries(doc.paths).flatMap(([path, item]) =>
  Object.entries(item)
    .filter(([method]) => ["get", "post", "put", "patch", "delete"].includes(method))
    .map(([method, op]) => ({ path, method, op })),
);

async function exercise({ path, method, op }: (typeof operations)[number]): Promise<void> {
  const onPlatform = path.startsWith("/v1/platform/") || path === "/v1/signup" || path.startsWith("/v1/erasures");
  const valid = chance(0.7);
  let url = path;
  const query = new URLSearchParams();
  const headers: Record<string, string> = {};
  for (const p of op.parameters ?? []) {
    const value = p.in === "path" ? idFor(path, p.name) : p.required || chance(0.5) ? generate(p.schema ?? {}, p.name) : undefined;
    if (value === undefined) continue;
    const text = typeof value === "string" ? value : JSON.stringify(value);
    if (p.in === "path") url = url.replace(`{${p.name}}`, encodeURIComponent(onPlatform && p.name === "id" && protectedIds.has(text) ? "ten_missing" : text));
    else if (p.in === "query") query.set(p.name, valid ? text : String(mutate(text, true)));
    else if (p.in === "header") headers[p.name] = text.replace(/[^\x21-\x7e]/g, "x");
  }
  const host = onPlatform ? "localhost" : `${TENANT}.localhost`;
  headers["cf-connecting-ip"] = pick(CLIENTS);
  const token = onPlatform ? adminToken : platform.token;
  if (op.security?.length || onPlatform) headers.authorization = `Bearer ${token}`;
  let body: string | undefined;
  const json = op.requestBody?.content["application/json"]?.schema;
  // Whether the request is one its schemas allow, as far as they can tell: then a 400 VALIDATION_FAILED
  // naming a body or query field means the code enforces a constraint the document does not state.
  let allowed = valid;
  for (const p of op.parameters ?? []) {
    if (p.in === "query" && query.has(p.name) && p.schema) allowed &&= validatorFor(p.schema)(coerce(query.get(p.name)!, p.schema)) === true;
  }
  if (json) {
    const value = generate(json);
    body = JSON.stringify(valid ? value : mutate(value));
    allowed &&= validatorFor(json)(value) === true;
    headers["content-type"] = "application/json";
  } else if (op.requestBody) {
    body = stringFor({ maxLength: 200 }, "");
    headers["content-type"] = Object.keys(op.requestBody.content)[0] ?? "text/plain";
  }
  const target = `http://${host}${url}${query.size ? `?${query}` : ""}`;
  const label = `${method.toUpperCase()} ${target}${body ? ` ${body.slice(0, 200)}` : ""}`;
  let res: Response;
  try {
    res = (await mf.dispatchFetch(target, { method: method.toUpperCase(), headers, body } as never)) as unknown as Response;
  } catch (err) {
    violations.push({ kind: "request failed", request: label, status: 0, detail: String(err) });
    return;
  }
  sent++;
  statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
  const declared = op.responses[String(res.status)] ?? op.responses.default;
  const mediaType = (res.headers.get("content-type") ?? "").split(";")[0]!.trim();
  // An event stream stays open while its run does: look at its headers, not its body.
  let text = "";
  if (mediaType === "text/event-stream") await res.body?.cancel();
  else text = await res.text();
  if (res.status >= 500) violations.push({ kind: "server error", request: label, status: res.status, detail: text.slice(0, 300) });
  // The README promises it: every 429 says when to come back.
  if (res.status === 429 && !/^\d+$/.test(res.headers.get("retry-after") ?? "")) violations.push({ kind: "429 without Retry-After", request: label, status: res.status, detail: text.slice(0, 300) });
  // Only the schema's own refusals ("Invalid body: …", "Invalid query: …") count; a well-formed request that names
  // an object that does not exist, or breaks a rule about the tenant's state, is refused in other words.
  if (allowed && res.status === 400 && /"code":"VALIDATION_FAILED"/.test(text) && /"detail":"Invalid (body|query):/.test(text)) {
    violations.push({ kind: "refused a request its schema allows", request: label, status: res.status, detail: text.slice(0, 400) });
  }
  if (!declared) return void violations.push({ kind: "undeclared status", request: label, status: res.status, detail: text.slice(0, 300) });
  if (!declared.content || !text) return;
  const content = declared.content[mediaType];
  if (!content) return void violations.push({ kind: "undeclared content type", request: label, status: res.status, detail: `${mediaType}; declared ${Object.keys(declared.content).join(", ")}` });
  // JSON and its +json kinds (problem+json); not NDJSON, which is many JSON documents, one per line.
  if (!content.schema || !/^application\/([\w.-]+\+)?json$/.test(mediaType)) return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return void violations.push({ kind: "invalid JSON", request: label, status: res.status, detail: text.slice(0, 300) });
  }
  harvest(parsed);
  const code = (parsed as { code?: unknown }).code;
  if (mediaType === "application/problem+json" && typeof code === "string") codes.set(code, (codes.get(code) ?? 0) + 1);
  const validate = validatorFor(content.schema);
  if (!validate(parsed)) violations.push({ kind: "body breaks its schema", request: label, status: res.status, detail: ajv.errorsText(validate.errors) });
}

// A few objects to start from, so paths with ids reach real rows.
const seed = async (path: string, body: unknown) => {
  const res = await mf.dispatchFetch(`http://${TENANT}.localhost${path}`, { method: "POST", headers: { authorization: `Bearer ${platform.token}`, "content-type": "application/json" }, body: JSON.stringify(body) } as never);
  const parsed = (await res.json()) as Record<string, unknown>;
  harvest(parsed);
  return parsed;
};
const project = await seed("/v1/projects", { name: "Fuzzed" });
await seed("/v1/conversations", { project_id: project.id });
const agent = await seed("/v1/agents", { project_id: project.id, name: "Fuzz agent" });
await seed("/v1/runs", { project_id: project.id, agent_id: agent.id, input: { text: "hello" } });
harvest((await (await mf.dispatchFetch("http://localhost/v1/platform/tenants", { headers: { authorization: `Bearer ${adminToken}` } } as never)).json()) as unknown);

const deadline = Date.now() + SECONDS * 1000;
let round = 0;
while (Date.now() < deadline) {
  await exercise(operations[round++ % operations.length]!);
}
await mf.dispose();

const byKind = new Map<string, Violation[]>();
for (const v of violations) byKind.set(v.kind, [...(byKind.get(v.kind) ?? []), v]);
const serverErrors = violations.filter((v) => v.kind === "server error" || v.kind === "request failed").length;
const summary = [
  `fuzz: seed ${SEED}: ${sent} requests over ${operations.length} operations in ${SECONDS} s`,
  `statuses: ${[...statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`).join(" ")}`,
  `problems: ${[...codes].sort(([, a], [, b]) => b - a).map(([c, n]) => `${c}×${n}`).join(" ")}`,
  `${serverErrors} server errors, ${violations.length - serverErrors} document violations`,
  ...[...byKind].flatMap(([kind, vs]) => [`\n${kind}: ${vs.length}`, ...[...new Map(vs.map((v) => [`${v.request.split(" ")[0]} ${v.status} ${v.detail}`.slice(0, 160), v])).values()].slice(0, 8).map((v) => `  ${v.status} ${v.request.slice(0, 180)}\n      ${v.detail.slice(0, 300)}`)]),
].join("\n");
console.log(summary);
if (values.report) writeFileSync(values.report, summary);
process.exit(violations.length ? 1 : 0);
