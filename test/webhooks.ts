import { env } from "cloudflare:test";
import { Webhook } from "standardwebhooks";
import { QUEUES } from "../src/index";
import { call, expectStatus, type TestTenant } from "./harness";
import { deliver } from "./runs";

/** A fresh inbox at the test receiver: its URL, what it was sent, and how it should answer next. */
export function inbox(name = crypto.randomUUID().slice(0, 12)) {
  const base = `https://hooks.example.com/${name}`;
  return {
    url: `${base}/events`,
    async deliveries(): Promise<{ url: string; headers: Record<string, string>; body: string; answered: number }[]> {
      return (await env.RECEIVER.fetch(`${base}/__deliveries`)).json();
    },
    async answer(...answers: { status: number; headers?: Record<string, string>; body?: string; hang_ms?: number }[]) {
      await env.RECEIVER.fetch(`${base}/__script`, { method: "POST", body: JSON.stringify(answers) });
    },
  };
}

export async function createEndpoint(t: TestTenant, body: Record<string, unknown>) {
  const res = await call(`${t.host}/v1/webhooks/endpoints`, { token: t.owner.token, body });
  expectStatus(res, 201);
  return res.body as { id: string; secret: string; [k: string]: unknown };
}

/** The webhook messages of an endpoint, newest first. */
export async function messagesOf(t: TestTenant, endpointId: string) {
  const res = await call(`${t.host}/v1/webhooks/messages?endpoint_id=${endpointId}&limit=100`, { token: t.owner.token });
  expectStatus(res, 200);
  return res.body.data as { id: string; status: string; attempts: number; event_type: string; event_id: string; last_error: string | null; next_attempt_at: string | null }[];
}

/** Delivers a webhook message's queue message to the consumer, as the queue would. */
export const deliverWebhook = (t: TestTenant, messageId: string, attempts = 1) => deliver(QUEUES.webhooks, { v: 1, tenant_id: t.id, message_id: messageId }, attempts);

/** Verifies a delivery's signature with the standardwebhooks package (a peer's implementation); throws if it does not verify. */
export function verify(secret: string, d: { headers: Record<string, string>; body: string }) {
  return new Webhook(secret).verify(d.body, { "webhook-id": d.headers["webhook-id"]!, "webhook-timestamp": d.headers["webhook-timestamp"]!, "webhook-signature": d.headers["webhook-signature"]! });
}
