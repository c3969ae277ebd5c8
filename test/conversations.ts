import { call, expectStatus, type TestTenant } from "./harness";

/** Makes a project and a conversation in it, through the API. */
export async function createConversation(t: TestTenant, extra: Record<string, unknown> = {}, token = t.owner.token) {
  const project = await call(`${t.host}/v1/projects`, { token: t.owner.token, body: { name: "Chat project" } });
  expectStatus(project, 201);
  const res = await call(`${t.host}/v1/conversations`, { token, body: { project_id: project.body.id, ...extra } });
  expectStatus(res, 201);
  return { id: res.body.id as string, projectId: project.body.id as string, body: res.body, url: `${t.host}/v1/conversations/${res.body.id}` };
}
