import { QUEUES } from "../src/index";
import { call, expectStatus, type TestTenant } from "./harness";
import { deliver } from "./runs";

/** A project and a knowledge base in it, through the API. */
export async function createBase(t: TestTenant, extra: Record<string, unknown> = {}, projectId?: string) {
  const project = projectId ?? (await call(`${t.host}/v1/projects`, { token: t.owner.token, body: { name: "Knowledge" } })).body.id;
  const base = await call(`${t.host}/v1/knowledge-bases`, { token: t.owner.token, body: { project_id: project, name: "Guide", ...extra } });
  expectStatus(base, 201);
  return { projectId: project as string, baseId: base.body.id as string };
}

/** Uploads a document (raw body) and returns the answer. */
export function upload(t: TestTenant, baseId: string, name: string, body: BodyInit, contentType = "text/plain", query = "", headers: Record<string, string> = {}) {
  return call(`${t.host}/v1/knowledge-bases/${baseId}/documents?name=${encodeURIComponent(name)}${query}`, {
    method: "POST",
    token: t.owner.token,
    rawBody: body,
    headers: { "content-type": contentType, ...headers },
  });
}

export const ingestMessage = (t: TestTenant, documentId: string, version = 1) => ({ v: 1, tenant_id: t.id, document_id: documentId, version });

/** Delivers the ingestion message of a document's version to the consumer, as the queue would. */
export const deliverIngest = (t: TestTenant, documentId: string, version = 1, attempts = 1) => deliver(QUEUES.ingest, ingestMessage(t, documentId, version), attempts);

/** Uploads a document and ingests it; returns the document as it then is. */
export async function addDocument(t: TestTenant, baseId: string, name: string, text: string, contentType = "text/plain", query = "") {
  const res = await upload(t, baseId, name, text, contentType, query);
  expectStatus(res, 202);
  await deliverIngest(t, res.body.id, res.body.version);
  return getDocument(t, baseId, res.body.id);
}

export async function getDocument(t: TestTenant, baseId: string, id: string) {
  const res = await call(`${t.host}/v1/knowledge-bases/${baseId}/documents/${id}`, { token: t.owner.token });
  expectStatus(res, 200);
  return res.body;
}

/** Searches one base (or several, with `knowledge_base_ids` in the body). */
export function search(t: TestTenant, baseId: string, body: Record<string, unknown>, token = t.owner.token) {
  return call(`${t.host}/v1/knowledge-bases/${baseId}/search`, { token, body });
}
