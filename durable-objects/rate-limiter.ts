import { DurableObject } from "cloudflare:workers";

/**
 * One per limited key (tenant, user, API key): its budgets in SQLite behind typed RPC.
 * Bound now so the binding and its SQLite migration exist from the first deploy; the
 * limits themselves arrive with issue 4.
 */
export class RateLimiter extends DurableObject {}
