import type { Permission, Role } from "./auth/permissions";
import type { TenantRecord } from "./db/directory";
import type { Plan } from "./db/plans";
import type { TenantDb } from "./db/router";
import type { Config, Env } from "./env";
import type { Decision } from "./limits/rate-limit";
import type { Logger } from "./lib/log";

/** Who is calling: a member with a JWT, or an API key acting within its creator's role. */
export type Principal = (
  | { kind: "user"; userId: string; role: Role; permissions: ReadonlySet<Permission> }
  | { kind: "api_key"; keyId: string; userId: string; role: Role; permissions: ReadonlySet<Permission>; keyLimit: number | null }
  /** A person without an account, reviewing one post through a review link: `userId` is the link's id; no permissions. */
  | { kind: "guest"; linkId: string; postId: string; name: string; userId: string; role: Role; permissions: ReadonlySet<Permission> }
) & {
  /** The projects this caller is limited to (its member's assignment), or null for every project of the tenant. */
  projects: readonly string[] | null;
  /** When this proof of identity stops counting (ms): a token's expiry, or an access token's lifetime for a key. Long-lived connections re-check against it. */
  expiresAt: number;
};

/** Hono's environment for every route and middleware. */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    requestId: string;
    log: Logger;
    config: Config;
    tenant: TenantRecord;
    /** The tenant's own database (and no other), opened once by the host middleware. */
    db: TenantDb;
    /** The tenant's plan, read once per request by the host middleware. */
    plan: Plan;
    principal: Principal;
    /** What this request was counted under, for the RateLimit headers. */
    rateLimits: Decision[];
  };
}
