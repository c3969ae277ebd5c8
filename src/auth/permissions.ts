/**
 * The one permission matrix. Routes name a permission; roles grant sets of them;
 * API key scopes are permissions too, and a key holds only scopes its creator's role has.
 */
export const PERMISSIONS = [
  "projects:read",
  "projects:write",
  "members:read",
  "members:write",
  "invitations:write",
  "api_keys:read",
  "api_keys:write",
  "audit:read",
  "conversations:read",
  "conversations:write",
  "usage:read",
  "agents:read",
  "agents:write",
  "prompts:read",
  "prompts:write",
  "runs:read",
  "runs:write",
  "artifacts:read",
  "artifacts:write",
  "knowledge:read",
  "knowledge:write",
  "webhooks:read",
  "webhooks:write",
  "campaigns:read",
  "campaigns:write",
  "posts:read",
  "posts:write",
  "posts:review",
  "compliance:manage",
] as const;

export type Permission = (typeof PERMISSIONS)[number];

export const ROLES = ["owner", "admin", "editor", "viewer", "client"] as const;
export type Role = (typeof ROLES)[number];

/** What only admins and owners may do: manage people and webhooks, see the audit log and the bill, export the tenant and set its retention. */
const ADMIN_ONLY: ReadonlySet<Permission> = new Set(["members:write", "invitations:write", "audit:read", "usage:read", "webhooks:read", "webhooks:write", "compliance:manage"]);

export const ROLE_PERMISSIONS: Record<Role, ReadonlySet<Permission>> = {
  owner: new Set(PERMISSIONS),
  admin: new Set(PERMISSIONS),
  // Editors make things: everything but the admin-only permissions.
  editor: new Set(PERMISSIONS.filter((p) => !ADMIN_ONLY.has(p))),
  // Viewers read content; keys, the audit log and usage are not theirs to see.
  viewer: new Set(PERMISSIONS.filter((p) => p.endsWith(":read") && !ADMIN_ONLY.has(p) && p !== "api_keys:read")),
  // A client's reviewer sees the content made for it and reviews it, in its assigned projects only.
  client: new Set<Permission>(["projects:read", "campaigns:read", "posts:read", "posts:review", "artifacts:read"]),
};

/** Roles that always reach every project; the others may be limited to some, and a client always is. */
export const TENANT_WIDE_ROLES: ReadonlySet<Role> = new Set(["owner", "admin"]);

/**
 * What a member limited to some projects may not do whatever their role: change what every
 * project shares (prompts are the tenant's, not a project's).
 */
export const TENANT_WIDE_WRITES: ReadonlySet<Permission> = new Set(["prompts:write"]);

/** The roles granting something `role` does not: what a key's ceiling must come down from when its creator becomes `role`. */
export function rolesExceeding(role: Role): Role[] {
  return ROLES.filter((r) => [...ROLE_PERMISSIONS[r]].some((p) => !ROLE_PERMISSIONS[role].has(p)));
}

/** True when `role` grants `permission`. */
export function roleAllows(role: Role, permission: Permission): boolean {
  return ROLE_PERMISSIONS[role].has(permission);
}
