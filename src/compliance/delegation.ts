import { eq } from "drizzle-orm";
import { erasures, tenants } from "../db/control/schema";
import { controlDb, tenantBinding } from "../db/router";
import { type Env, loadConfig } from "../env";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { forwardTo } from "../shards/shards";
import { type PersonTenant, personTenantInventory, personTenantSteps, type StepState, type TenantPart, type TenantRef } from "./erasure";
import type { Person } from "./person";

// A person's erasure runs where it was asked (the router), but a tenant's database opens only in
// its shard's Worker: the job's parts in such a tenant — its inventory, then each step — are sent
// to that shard (POST /v1/platform/erasures/{id}/tenant-work) and run there by the same code, the
// job's progress staying in the control database as for every other step.

/** What the router sends: the part, the person and the tenant as the job knows them. */
export type TenantWork = { person: Person } & ({ part: "inventory"; tenant: TenantRef } | { part: "step"; tenant: TenantPart; step: string; state: StepState });

async function send<T>(env: Env, erasureId: string, shard: string, work: TenantWork): Promise<T> {
  const config = loadConfig(env);
  const request = new Request(`https://${config.BASE_DOMAIN}/v1/platform/erasures/${erasureId}/tenant-work`, {
    method: "POST",
    headers: { authorization: `Bearer ${config.PLATFORM_ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(work),
  });
  const res = (await forwardTo(env, shard, request, newId("req")))!;
  if (!res.ok) throw new Error(`shard ${shard} refused the erasure's work in tenant ${work.tenant.id}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** The tenant's inventory, taken by its shard. */
export function delegateInventory(env: Env, erasureId: string, person: Person, tenant: TenantRef): Promise<PersonTenant> {
  return send<PersonTenant>(env, erasureId, tenant.shard!, { part: "inventory", person, tenant });
}

/** One step in the tenant, run by its shard from `state`; the state it ends in is copied back. */
export async function delegateStep(env: Env, erasureId: string, person: Person, tenant: TenantPart, step: string, state: StepState): Promise<void> {
  Object.assign(state, await send<StepState>(env, erasureId, tenant.shard!, { part: "step", person, tenant, step, state }));
}

/**
 * On the tenant's shard: the part the router sent, for a running erasure of this person, in a
 * tenant whose database this Worker binds (checked against the control database, not the body).
 */
export async function runTenantWork(env: Env, erasureId: string, work: TenantWork): Promise<PersonTenant | StepState> {
  const db = controlDb(env);
  const [job, tenant] = await db.batch([db.select().from(erasures).where(eq(erasures.id, erasureId)), db.select({ dbBinding: tenants.dbBinding }).from(tenants).where(eq(tenants.id, work.tenant.id))]);
  const row = job[0];
  if (row?.subject !== "user" || row.subjectId !== work.person.userId) throw new ApiError("NOT_FOUND", `No erasure ${erasureId} of this person`);
  if (row.status === "completed") throw new ApiError("CONFLICT", `Erasure ${erasureId} is completed`);
  const binding = tenant[0]?.dbBinding;
  if (binding !== work.tenant.dbBinding || !tenantBinding(env, binding)) throw new ApiError("CONFLICT", `Tenant ${work.tenant.id}'s database is not on this shard`);
  if (work.part === "inventory") return personTenantInventory(env, work.tenant, work.person);
  const step = personTenantSteps(env, row, work.person, work.tenant, {}).find((s) => s.name === work.step);
  if (!step) throw new ApiError("VALIDATION_FAILED", `No step ${work.step} in tenant ${work.tenant.id}`, { errors: [{ in: "body", field: "step", message: "not a step of this tenant" }] });
  const state = { ...work.state };
  await step.run(state);
  return state;
}
