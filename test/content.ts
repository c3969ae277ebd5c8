import { call, expectStatus, type TestTenant } from "./harness";

/** A project of the tenant, for content. */
export async function createProject(t: TestTenant, name = "Content") {
  const res = await call(`${t.host}/v1/projects`, { token: t.owner.token, body: { name } });
  expectStatus(res, 201);
  return res.body.id as string;
}

/** Sets a project's approval policy. */
export async function setPolicy(t: TestTenant, projectId: string, body: Record<string, unknown>) {
  const res = await call(`${t.host}/v1/projects/${projectId}/approval-policy`, { method: "PUT", token: t.owner.token, body });
  expectStatus(res, 200);
  return res.body;
}

/** A draft post in the project with one LinkedIn variant. */
export async function createPost(t: TestTenant, projectId: string, text = "Spring is here.", token = t.owner.token) {
  const res = await call(`${t.host}/v1/posts`, { token, body: { project_id: projectId, title: "Launch", variants: [{ channel: "linkedin", text }] } });
  expectStatus(res, 201);
  return res.body as { id: string; revision: number; status: string; current: { content_hash: string } };
}

/** Posts an action (submit, approve, …) on a post as `token`; answers the call. */
export const act = (t: TestTenant, postId: string, action: string, token: string, body?: Record<string, unknown>) =>
  call(`${t.host}/v1/posts/${postId}/${action}`, { method: "POST", token, ...(body && { body }) });

export async function getPost(t: TestTenant, postId: string) {
  const res = await call(`${t.host}/v1/posts/${postId}`, { token: t.owner.token });
  expectStatus(res, 200);
  return res.body as { id: string; status: string; revision: number; approved_revision: number | null; scheduled_at: string | null; scheduled_revision: number | null };
}
