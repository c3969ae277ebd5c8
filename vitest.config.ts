import { webcrypto } from "node:crypto";
import { availableParallelism } from "node:os";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { shardBinding, shardWorkerOptions } from "./scripts/local-platform.ts";

// A signing key and admin token made fresh for each test run; nothing secret is committed.
const pair = await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
const jwk = await webcrypto.subtle.exportKey("jwk", pair.privateKey);
const JWT_PRIVATE_KEY = JSON.stringify({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, d: jwk.d, kid: "k_test" });
const PLATFORM_ADMIN_TOKEN = `pat_test_${webcrypto.randomUUID()}`;
const SECRETS_KEY = Buffer.from(webcrypto.getRandomValues(new Uint8Array(32))).toString("base64");

const controlMigrations = await readD1Migrations("migrations/control");
const tenantMigrations = await readD1Migrations("migrations/tenant");

/**
 * `count` tenant databases, more than dev declares: every test makes its own tenant, and in the
 * api project (isolate: false, one workerd reused across files, its storage shared by them) the
 * pool has to outlast the whole project. The harness migrates them only as tenants take them.
 */
function tenantDatabases(count: number): Record<string, string> {
  const eu = Array.from({ length: 4 }, (_, i) => [`TENANT_DB_EU_${String(i + 1).padStart(4, "0")}`, `tessera-tenant-eu-${i + 1}`]);
  return Object.fromEntries([
    ...Array.from({ length: count }, (_, i) => {
      const n = String(i + 1).padStart(4, "0");
      return [`TENANT_DB_${n}`, `tessera-tenant-${n}`];
    }),
    // Four in the EU jurisdiction's pool, for the residency tests.
    ...eu,
  ]);
}

const secrets = { JWT_PRIVATE_KEY, PLATFORM_ADMIN_TOKEN, SECRETS_KEY };

function project(name: string, include: string[], exclude: string[], tenantDbCount: number, opts: { queueConsumers: boolean; isolate?: boolean; shards?: boolean }) {
  // A second shard's Worker beside this one (which is shard s1 and the router): bound as SHARD_S2,
  // with its own 12 databases (TENANT_DB_5001…), queues and Durable Objects.
  const s2 = opts.shards ? [shardWorkerOptions("s2", { first: 5001, databases: 12, controlDatabaseId: "tessera-control", bindings: secrets })] : [];
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        // The AI and Vectorize bindings would otherwise make the pool log in to Cloudflare.
        remoteBindings: false,
        miniflare: {
          // Added to wrangler.toml's bindings (same names keep the same databases).
          d1Databases: { CONTROL_DB: "tessera-control", ...tenantDatabases(tenantDbCount) },
          // Tests deliver queue batches themselves (createMessageBatch), so each delivery and its
          // outcome is the test's to choose: what the API sends goes to a queue nothing consumes.
          // The runtime's own delivery to the consumers is exercised in test/live.
          // The shards project drives a person's erasure slice by slice (moving the router's clock), so the router's compliance queue delivers nowhere.
          ...(opts.shards ? { queueProducers: { COMPLIANCE_QUEUE: { queueName: "tessera-compliance-undelivered" } } } : {}),
          ...(opts.queueConsumers ? {} : { queueProducers: { RUNS_QUEUE: { queueName: "tessera-runs-undelivered" }, INGEST_QUEUE: { queueName: "tessera-ingest-undelivered" }, WEBHOOKS_QUEUE: { queueName: "tessera-webhooks-undelivered" }, PUBLISH_QUEUE: { queueName: "tessera-publish-undelivered" }, COMPLIANCE_QUEUE: { queueName: "tessera-compliance-undelivered" }, SWEEP_QUEUE: { queueName: "tessera-sweep-undelivered" } } }),
          // Every fetch the Worker makes (webhook deliveries) goes to the test receiver, reachable from tests as RECEIVER.
          outboundService: "receiver",
          serviceBindings: { RECEIVER: "receiver", ...(opts.shards ? { [shardBinding("s2")]: "tessera-s2" } : {}) },
          workers: [
            {
              name: "receiver",
              modules: true,
              scriptPath: "./test/receiver/receiver.js",
              compatibilityDate: "2026-08-01",
              durableObjects: { INBOX: { className: "Inbox", useSQLite: true } },
            },
            ...s2,
          ],
          bindings: {
            ...secrets,
            // A webhook attempt is abandoned after 15 s; the tests' receiver hangs past 2 s instead.
            WEBHOOK_TIMEOUT_MS: "2000",
            CONTROL_MIGRATIONS: controlMigrations,
            TENANT_MIGRATIONS: tenantMigrations,
          },
        },
      }),
    ],
    // Generous: a shared CI machine can be several times slower than a laptop; no test relies on a timeout to pass.
    test: { name, include, exclude, setupFiles: ["./test/setup.ts"], testTimeout: 20_000, isolate: opts.isolate ?? true },
  };
}

export default defineConfig({
  test: {
    // The tests wait on local round trips (D1, Durable Objects) more than on CPU: more workers than cores pay off.
    maxWorkers: Math.max(4, availableParallelism()),
    // The Worker logs a JSON line per request; keep warnings and errors, drop the rest.
    onConsoleLog: (_log, type) => type === "stderr",
    projects: [
      // Reuses its workers across files (about 1.5 s of startup each saved): tests never rely on an empty database.
      project("api", ["test/**/*.test.ts"], ["test/pool/**", "test/live/**", "test/shards/**", "test/scripts/**"], 512, { queueConsumers: false, isolate: false }),
      // Its own workerd with only wrangler.toml's databases: it drains the pool on purpose.
      project("pool", ["test/pool/**/*.test.ts"], [], 0, { queueConsumers: false }),
      // Queues as wrangler.toml configures them: the runtime delivers messages to the consumers.
      project("live", ["test/live/**/*.test.ts"], [], 8, { queueConsumers: true }),
      // A router and two shards: this Worker (s1, with wrangler.toml's databases) and tessera-s2.
      project("shards", ["test/shards/**/*.test.ts"], [], 0, { queueConsumers: true, shards: true }),
      // The operator's scripts, in Node: what they do to configs and the APIs they call.
      { test: { name: "scripts", include: ["test/scripts/**/*.test.ts"], environment: "node" } },
    ],
  },
});
