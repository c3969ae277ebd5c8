import { call, expectStatus, type TestTenant } from "./harness";

/** Makes a project and a conversation in it, through the API. */
export async function createConversation(t: TestTenant, extra: Record<string, unknown> = {}, token = t.owner.token) {
  const project = await call(`${t.host}/v1/projects`, { token: t.owner.token, body: { name: "Chat project" } });
  expectStatus(project, 201);
  const res = await call(`${t.host}/v1/conversations`, { token, body: { project_id: project.body.id, ...extra } });
  expectStatus(res, 201);
  return { id: res.body.id as string, projectId: project.body.id as string, body: res.body, url: `${t.host}/v1/conversations/${res.body.id}` };
}

/** The server-sent events of a reply streamed over HTTP, in order: each event's name and its JSON data. */
// biome-ignore lint/suspicious/noExplicitAny: each event's data has its own shape; tests assert on it.
export function sseEvents(text: string): { event: string; data: any }[] {
  return text
    .trim()
    .split("\n\n")
    .map((block) => ({ event: /^event: (.*)$/m.exec(block)![1]!, data: JSON.parse(/^data: (.*)$/m.exec(block)![1]!) }));
}
