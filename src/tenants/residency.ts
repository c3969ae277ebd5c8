import { type Env, loadConfig } from "../env";
import { type Jurisdiction, jurisdictionOf } from "../db/router";

// Where a tenant's data is placed, by the jurisdiction it chose at signup. Its database comes from
// its jurisdiction's pool (src/db/pool.ts); its R2 objects and Durable Objects are placed here, so
// every read and write of them goes through these two functions.

/** Anything that knows its tenant's jurisdiction: a host record, a tenant row. */
export type Placed = { jurisdiction: Jurisdiction };

/** The binding of the bucket a tenant's objects live in: ARTIFACTS_EU (created in the EU jurisdiction) for an EU tenant. */
const bucketBindingOf = (tenant: Placed) => (tenant.jurisdiction === "eu" ? "ARTIFACTS_EU" : "ARTIFACTS");

/** The R2 bucket a tenant's objects are written to and read from. */
export const bucketOf = (env: Env, tenant: Placed): R2Bucket => env[bucketBindingOf(tenant)];

/**
 * The tenant's Durable Object `name` of namespace `ns`, made in its jurisdiction. With RESIDENCY
 * "cloudflare" an EU tenant's object comes from `ns.jurisdiction("eu")`, which Cloudflare keeps in
 * the EU. workerd has no jurisdictions ("not implemented in workerd"), so "simulated" gives the
 * object an id of its own (its name prefixed with the jurisdiction) in the same local namespace:
 * the same separation of ids as production, without the placement.
 */
export function objectOf<T extends Rpc.DurableObjectBranded | undefined>(env: Env, ns: DurableObjectNamespace<T>, tenant: Placed, name: string): DurableObjectStub<T> {
  if (tenant.jurisdiction === "default") return ns.get(ns.idFromName(name));
  if (loadConfig(env).RESIDENCY === "cloudflare") {
    const placed = ns.jurisdiction(tenant.jurisdiction);
    return placed.get(placed.idFromName(name));
  }
  return ns.get(ns.idFromName(`${tenant.jurisdiction}:${name}`));
}

/**
 * Where each part of a tenant's data lives, as the operator's API shows it: the database (its
 * binding's jurisdiction), R2 objects (the bucket), conversation rooms (placed by Cloudflare, or
 * given ids of their own where jurisdictions are simulated), and what is not placed by jurisdiction.
 */
export function residencyOf(env: Env, tenant: Placed & { dbBinding: string }) {
  const eu = tenant.jurisdiction !== "default";
  return {
    database: { binding: tenant.dbBinding, jurisdiction: jurisdictionOf(tenant.dbBinding) },
    objects: { bucket: bucketBindingOf(tenant), jurisdiction: tenant.jurisdiction },
    conversations: { jurisdiction: tenant.jurisdiction, placement: eu ? loadConfig(env).RESIDENCY : ("default" as const) },
    /** Not placed by jurisdiction (README, "Data residency"). */
    unplaced: ["vector index", "queue messages", "host cache (KV)", "rate-limit counters", "publishing schedule", "logs"],
  };
}
