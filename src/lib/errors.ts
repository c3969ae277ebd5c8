import type { ContentfulStatusCode } from "hono/utils/http-status";

/** The closed list of error codes the API answers with; documented in README and checked by a test. */
export const ERROR_CODES = {
  VALIDATION_FAILED: { status: 400, title: "Request validation failed" },
  MALFORMED_JSON: { status: 400, title: "Malformed JSON" },
  INVALID_CURSOR: { status: 400, title: "Invalid pagination cursor" },
  REQUEST_ABORTED: { status: 400, title: "The client stopped sending the request" },
  UNAUTHENTICATED: { status: 401, title: "Authentication required" },
  INVALID_TOKEN: { status: 401, title: "Invalid or expired token" },
  INVALID_CREDENTIALS: { status: 401, title: "Invalid credentials" },
  REFRESH_TOKEN_REUSED: { status: 401, title: "Refresh token reused" },
  FORBIDDEN: { status: 403, title: "Forbidden" },
  INSUFFICIENT_SCOPE: { status: 403, title: "API key lacks the required scope" },
  TENANT_SUSPENDED: { status: 403, title: "Tenant suspended" },
  PLAN_LIMIT: { status: 403, title: "Plan limit reached" },
  NOT_FOUND: { status: 404, title: "Not found" },
  METHOD_NOT_ALLOWED: { status: 405, title: "Method not allowed" },
  TENANT_NOT_FOUND: { status: 404, title: "No tenant at this host" },
  CONFLICT: { status: 409, title: "Conflict" },
  SLUG_TAKEN: { status: 409, title: "Slug already taken" },
  EMAIL_TAKEN: { status: 409, title: "Email already registered" },
  LAST_OWNER: { status: 409, title: "A tenant must keep an owner" },
  IDEMPOTENCY_KEY_REUSED: { status: 409, title: "Idempotency key already used with another request" },
  RUN_FINISHED: { status: 409, title: "The run has already finished" },
  INVALID_STATE: { status: 409, title: "Not allowed in the object's current state" },
  STALE_REVISION: { status: 409, title: "Not the post's current revision" },
  INVITATION_INVALID: { status: 410, title: "Invitation expired or already used" },
  REVIEW_LINK_INVALID: { status: 410, title: "Review link expired or revoked" },
  LENGTH_REQUIRED: { status: 411, title: "Content-Length required" },
  PRECONDITION_FAILED: { status: 412, title: "Precondition failed" },
  PAYLOAD_TOO_LARGE: { status: 413, title: "Payload too large" },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: "Unsupported media type" },
  RANGE_NOT_SATISFIABLE: { status: 416, title: "Range not satisfiable" },
  UPGRADE_REQUIRED: { status: 426, title: "WebSocket upgrade required" },
  RATE_LIMITED: { status: 429, title: "Too many requests" },
  QUOTA_EXCEEDED: { status: 429, title: "Monthly token quota used up" },
  TOO_MANY_CONNECTIONS: { status: 429, title: "Too many open connections for this credential" },
  TOO_MANY_LOGIN_ATTEMPTS: { status: 429, title: "Too many failed sign-in attempts for this account" },
  NO_TENANT_DATABASE: { status: 503, title: "No tenant database available" },
  SHARD_UNAVAILABLE: { status: 503, title: "The tenant's shard is not reachable from here" },
  SCHEMA_BEHIND: { status: 503, title: "This tenant's database is being upgraded" },
  ROLLOUT_ACTIVE: { status: 409, title: "A schema rollout is already running" },
  ROLLOUT_STATE: { status: 409, title: "The rollout is not in a state for that" },
  QUEUE_UNAVAILABLE: { status: 503, title: "Could not queue the run" },
  INTERNAL_ERROR: { status: 500, title: "Internal error" },
} as const satisfies Record<string, { status: ContentfulStatusCode; title: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** One invalid field: where it was (`body`, `query`, `path`, `header`), its dotted path, and why. */
export interface FieldError {
  in: string;
  field: string;
  message: string;
}

/** The one error the code throws for anything a client should see; rendered as problem+json. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly status: ContentfulStatusCode;
  readonly errors?: FieldError[];
  readonly headers?: Record<string, string>;

  constructor(code: ErrorCode, detail?: string, opts: { errors?: FieldError[]; headers?: Record<string, string> } = {}) {
    super(detail ?? ERROR_CODES[code].title);
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.errors = opts.errors;
    this.headers = opts.headers;
  }
}

/** RFC 9457 body for an error code. */
export function problemBody(code: ErrorCode, detail: string, requestId: string, errors?: FieldError[]) {
  const { status, title } = ERROR_CODES[code];
  return {
    type: `https://docs.tessera.dev/errors/${code.toLowerCase().replaceAll("_", "-")}`,
    title,
    status,
    detail,
    code,
    request_id: requestId,
    ...(errors ? { errors } : {}),
  };
}

/** A problem+json Response. */
export function problemResponse(code: ErrorCode, detail: string, requestId: string, opts: { errors?: FieldError[]; headers?: Record<string, string> } = {}): Response {
  const body = problemBody(code, detail, requestId, opts.errors);
  return new Response(JSON.stringify(body), {
    status: body.status,
    headers: { "content-type": "application/problem+json", "x-request-id": requestId, ...opts.headers },
  });
}

/** An error's message with its causes' (drizzle wraps D1's constraint errors in a cause). */
export function errorText(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && depth < 5; depth++) {
    parts.push(e instanceof Error ? e.message : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(" | ");
}
