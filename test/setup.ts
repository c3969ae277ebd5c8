import { applyD1Migrations, env } from "cloudflare:test";
import { ensureFreeDatabases } from "./harness";

// The same migrations `npm run db:migrate` applies, then the same pool registration the
// platform's sync endpoint does — for the control database and the first few tenant databases
// only: the harness migrates more as a file's tenants need them (most files need a handful, and
// migrating all 64 per file was half the suite's time).
await applyD1Migrations(env.CONTROL_DB, env.CONTROL_MIGRATIONS);
await ensureFreeDatabases(6);
