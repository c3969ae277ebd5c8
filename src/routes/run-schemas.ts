import { z } from "@hono/zod-openapi";
import { RUN_STATUSES } from "../db/tenant/schema";
import { type RunRow, runSummary } from "../runs/store";
import { CitationSchema } from "./openapi";

/** A run as every route answering one shows it (runs, and the runs features queue: campaign ideas). */
export const RunSchema = z
  .object({
    id: z.string(),
    project_id: z.string(),
    agent_id: z.string(),
    status: z.enum(RUN_STATUSES),
    input: z.record(z.string(), z.unknown()),
    prompt: z.object({ key: z.string(), version: z.number().int() }).nullable().openapi({ description: "The prompt version this run rendered" }),
    persona: z.object({ id: z.string(), version: z.number().int() }).nullable().openapi({ description: "The brand persona version its system prompt began with" }),
    output: z.string().nullable(),
    error: z.object({ code: z.string(), message: z.string().nullable() }).nullable(),
    attempts: z.number().int(),
    artifact_id: z.string().nullable().openapi({ description: "The artifact holding the output, once SUCCEEDED" }),
    usage: z
      .object({ model: z.string().nullable(), provider: z.string().nullable(), tokens_in: z.number().int().nullable(), tokens_out: z.number().int().nullable(), cost_micros: z.number().int().nullable() })
      .nullable(),
    latency_ms: z.number().int().nullable(),
    citations: z
      .array(CitationSchema)
      .nullable()
      .openapi({ description: "The knowledge chunks the prompt was grounded in (the agent's knowledge bases), cited in the output as [index]" }),
    cancel_requested_at: z.string().nullable(),
    created_by: z.string(),
    created_at: z.string(),
    started_at: z.string().nullable(),
    finished_at: z.string().nullable(),
    updated_at: z.string(),
  })
  .openapi("Run");

/** The header that makes a POST queueing a run safe to repeat. */
export const IdempotencyKey = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[\x21-\x7e]+$/, "printable ASCII without spaces")
  .optional()
  .openapi({ description: "Repeat a POST with the same key and body to get the same run back, never a second one" });

/** A run as the API shows it. */
export const renderRun = (r: RunRow): z.infer<typeof RunSchema> => {
  const s = runSummary(r);
  return {
    ...s,
    input: JSON.parse(r.input) as Record<string, unknown>,
    output: r.output,
    cancel_requested_at: r.cancelRequestedAt,
    created_by: r.createdBy,
    created_at: r.createdAt,
    started_at: r.startedAt,
    finished_at: r.finishedAt,
    updated_at: r.updatedAt,
  };
};
