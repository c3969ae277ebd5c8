import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { moveCredit } from "../../src/db/credits";
import { controlDb } from "../../src/db/router";
import { createConversation } from "../conversations";
import { adminToken, call, createTenant, eventually, expectProblem, expectStatus, PLATFORM } from "../harness";

const grant = (tenant: string, amount_micros: number, reason = "prepaid") =>
  call(`${PLATFORM}/v1/platform/tenants/${tenant}/credits`, { token: adminToken(), body: { amount_micros, reason } });

describe("the credit ledger", () => {
  it("lets the platform operator grant credit, and the tenant see its balance and ledger", async () => {
    const t = await createTenant();
    const first = await grant(t.id, 5_000_000, "welcome credit");
    expectStatus(first, 201);
    expect(first.body).toEqual({ tenant_id: t.id, balance_micros: 5_000_000 });
    expect((await grant(t.slug, 1_000_000)).body.balance_micros).toBe(6_000_000);
    const ledger = await call(`${t.host}/v1/credits`, { token: t.owner.token });
    expectStatus(ledger, 200);
    expect(ledger.body.balance_micros).toBe(6_000_000);
    expect(ledger.body.data.map((e: { amount_micros: number; kind: string }) => [e.kind, e.amount_micros])).toEqual([["grant", 1_000_000], ["grant", 5_000_000]]);
    expectProblem(await call(`${PLATFORM}/v1/platform/tenants/${t.id}/credits`, { token: t.owner.token, body: { amount_micros: 1, reason: "x" } }), 401, "INVALID_TOKEN");
    const bad = await grant(t.id, -5);
    expectProblem(bad, 400, "VALIDATION_FAILED");
    expect(bad.body.errors[0].field).toBe("amount_micros");
  });

  it("never loses a movement under parallel debits", async () => {
    const t = await createTenant();
    await grant(t.id, 1_000_000);
    const db = controlDb(env);
    const costs = Array.from({ length: 60 }, (_, i) => 1_000 + i);
    await Promise.all(costs.map((cost, i) => moveCredit(db, { tenantId: t.id, amountMicros: -cost, kind: "debit", reason: "test call", reference: `call-${i}` })));
    const ledger = await call(`${t.host}/v1/credits?limit=100`, { token: t.owner.token });
    expect(ledger.body.balance_micros).toBe(1_000_000 - costs.reduce((a, b) => a + b, 0));
    expect(ledger.body.data.filter((e: { kind: string }) => e.kind === "debit")).toHaveLength(60);
  });

  it("debits every assistant reply, referencing the reply", async () => {
    const t = await createTenant();
    await grant(t.id, 100);
    const conv = await createConversation(t);
    const res = await call(`${conv.url}/messages`, { token: t.owner.token, body: { content: "bill me", reply: true }, headers: { accept: "text/event-stream" } });
    const done = JSON.parse(/event: done\ndata: (.*)/.exec(res.text)![1]!);
    // The local model is free: the debit is recorded at zero, under the reply's id (the call's reference).
    await eventually(async () => {
      const debits = (await call(`${t.host}/v1/credits`, { token: t.owner.token })).body.data.filter((e: { kind: string }) => e.kind === "debit");
      expect(debits).toEqual([expect.objectContaining({ reference: done.reply_id, amount_micros: 0 })]);
    });
  });
});
