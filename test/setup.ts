import { applyD1Migrations, env } from "cloudflare:test";
import { syncPool } from "../src/db/pool";
import { boundTenantDatabases, tenantBinding } from "../src/db/router";

// The same migrations `npm run db:migrate` applies, then the same pool registration the
// platform's sync endpoint does. Both are idempotent, so every test file may run them.
await applyD1Migrations(env.CONTROL_DB, env.CONTROL_MIGRATIONS);
await Promise.all(boundTenantDatabases(env).map((b) => applyD1Migrations(tenantBinding(env, b)!, env.TENANT_MIGRATIONS)));
await syncPool(env);
