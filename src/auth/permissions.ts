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
] as const;

export type Permission = (typeof PERMISSIONS)[number];

export const ROLES = ["owner", "admin", "editor", "viewer"] as const;
export type Role = (typeof ROLES)[number];

export const ROLE_PERMISSIONS: Record<Role, ReadonlySet<Permission>> = {
  owner: new Set(PERMISSIONS),
  admin: new Set(PERMISSIONS),
  editor: new Set([
    "projects:read",
    "projects:write",
    "members:read",
    "api_keys:read",
    "api_keys:write",
    "conversations:read",
    "conversations:write",
    "agents:read",
    "agents:write",
    "prompts:read",
    "prompts:write",
    "runs:read",
    "runs:write",
    "artifacts:read",
    "artifacts:write",
  ]),
  viewer: new Set(["projects:read", "members:read", "conversations:read", "agents:read", "prompts:read", "runs:read", "artifacts:read"]),
};

/** Role rank for "may this actor touch that member": owner > admin > editor > viewer. */
export const ROLE_RANK: Record<Role, number> = { owner: 3, admin: 2, editor: 1, viewer: 0 };

/** True when `role` grants `permission`. */
export function roleAllows(role: Role, permission: Permission): boolean {
  return ROLE_PERMISSIONS[role].has(permission);
}
