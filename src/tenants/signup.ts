import { eq, sql } from "drizzle-orm";
import type { Context } from "hono";
import { startSession } from "../auth/sessions";
import type { AppEnv } from "../context";
import { recordAudit } from "../db/audit";
import { isNotNullViolation, isUniqueViolation } from "../db/constraints";
import { memberships, tenantDatabases, tenants, users } from "../db/control/schema";
import { publishTenant } from "../db/directory";
import { controlDb, type Jurisdiction } from "../db/router";
import { poolStatus } from "../db/pool";
import { ownShard } from "../shards/shards";
import { hashPassword, verifyPassword } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { createLogger } from "../lib/log";
import { tokenConfig } from "../middleware/auth";

/** A signup as the API takes it. */
export interface Signup {
  tenant: { name: string; slug: string; jurisdiction: Jurisdiction };
  user: { email: string; name: string; password: string };
}

/**
 * A tenant, its owner and their first session, written in one batch that also claims a free tenant
 * database (none free: 503, nothing written). An existing user may found another tenant, with
 * their own password.
 */
export async function signUp(c: Context<AppEnv>, body: Signup) {
  const db = controlDb(c.env);

  const [slugTaken, existingUser] = await db.batch([
    db.select({ id: tenants.id }).from(tenants).where(eq(tenants.slug, body.tenant.slug)),
    db.select().from(users).where(eq(users.email, body.user.email)),
  ]);
  if (slugTaken.length) throw new ApiError("SLUG_TAKEN", `The slug "${body.tenant.slug}" is taken`, { errors: [{ in: "body", field: "tenant.slug", message: "taken" }] });

  // Users are global: an existing user may found another tenant, but only with their own password.
  let user = existingUser[0];
  if (user && !(await verifyPassword(body.user.password, user.passwordHash))) {
    throw new ApiError("EMAIL_TAKEN", "This email is registered; sign up with its password to add a tenant to it", {
      errors: [{ in: "body", field: "user.email", message: "registered" }],
    });
  }
  const newUser = user ? undefined : { id: newId("usr"), email: body.user.email, name: body.user.name, passwordHash: await hashPassword(body.user.password) };
  user ??= { ...newUser!, createdAt: new Date().toISOString() };

  const tenantId = newId("ten");
  const now = new Date().toISOString();
  const session = await startSession(db, tokenConfig(c), { userId: user.id, tenantId, role: "owner" });
  // Only this Worker's own databases: the router sent the signup to the shard with the most free.
  const shard = ownShard(c.env);
  try {
    await db.batch([
      // Claim the first free database; if none is free the tenant insert below fails on its
      // NOT NULL binding and the whole batch rolls back.
      db
        .update(tenantDatabases)
        .set({ tenantId, assignedAt: now })
        .where(eq(tenantDatabases.binding, sql`(SELECT binding FROM tenant_databases WHERE tenant_id IS NULL AND jurisdiction = ${body.tenant.jurisdiction} AND shard = ${shard} ORDER BY binding LIMIT 1)`)),
      db.insert(tenants).values({
        id: tenantId,
        slug: body.tenant.slug,
        name: body.tenant.name,
        planId: "free",
        jurisdiction: body.tenant.jurisdiction,
        dbBinding: sql`(SELECT binding FROM tenant_databases WHERE tenant_id = ${tenantId})`,
      }),
      ...(newUser ? [db.insert(users).values(newUser)] : []),
      db.insert(memberships).values({ tenantId, userId: user.id, role: "owner" }),
      ...session.statements,
    ]);
  } catch (err) {
    throw signupConflict(err, body.tenant.jurisdiction, shard) ?? err;
  }

  const tenant = (await db.select().from(tenants).where(eq(tenants.id, tenantId)).get())!;
  // Each signup takes a database: when the pool runs low the operator hears of it before signups fail.
  const pool = await poolStatus(c.env);
  const left = pool.jurisdictions[body.tenant.jurisdiction].free;
  if (left < pool.low_water) createLogger({ component: "pool" }).warn("pool.low", { jurisdiction: body.tenant.jurisdiction, free: left, low_water: pool.low_water, registered: pool.registered });
  // A lookup of this host before signup remembered "unknown" in this isolate; publishing replaces it.
  await publishTenant(c.env, tenantId);
  // The audit log is the tenant's to read: it names nothing of the platform's inside (such as the database binding).
  await recordAudit(
    c,
    { action: "tenant.created", resourceType: "tenant", resourceId: tenantId, details: { slug: tenant.slug } },
    { tenant, actor: { type: "user", id: user.id } },
  );
  return { tokens: session.tokens, tenant, user };
}

function signupConflict(err: unknown, jurisdiction: Jurisdiction, shard: string): ApiError | undefined {
  if (isNotNullViolation(err, tenants, "dbBinding")) {
    return new ApiError("NO_TENANT_DATABASE", `Every tenant database in the ${jurisdiction} jurisdiction on shard ${shard} is in use; the operator must provision more. Try again later.`, {
      headers: { "Retry-After": "300" },
      errors: [{ in: "body", field: "tenant.jurisdiction", message: `no free database in ${jurisdiction} on shard ${shard}` }],
    });
  }
  if (isUniqueViolation(err, tenants, ["slug"])) {
    return new ApiError("SLUG_TAKEN", "The slug is taken", { errors: [{ in: "body", field: "tenant.slug", message: "taken" }] });
  }
  if (isUniqueViolation(err, users, ["email"])) {
    return new ApiError("EMAIL_TAKEN", "This email was just registered", { errors: [{ in: "body", field: "user.email", message: "registered" }] });
  }
  return undefined;
}
