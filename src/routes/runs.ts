import { createRoute, z } from "@hono/zod-openapi";
import { RUN_STATUSES } from "../db/tenant/schema";
import { PageQuery } from "../lib/pagination";
import { streamRunEvents } from "../runs/events";
import * as runService from "../runs/service";
import { errors, guarded, jsonBody, jsonResponse, pageOf, PromptKey, router, schema31 } from "./openapi";
import { IdempotencyKey, RunSchema, renderRun } from "./run-schemas";

const INPUT_BYTES = 64 * 1024;

const InputValue = z.union([z.string().max(32_000), z.number(), z.boolean(), z.null()]);
const Input = z
  .record(z.string().min(1).max(100), InputValue)
  .refine((v) => JSON.stringify(v).length <= INPUT_BYTES, `at most ${INPUT_BYTES} bytes of JSON`)
  .openapi({
    description: `The prompt's {{variables}}; without a prompt, \`text\` is the message sent to the model. At most ${INPUT_BYTES} bytes of JSON.`,
    example: { topic: "edge computing" },
    ...schema31({ propertyNames: { minLength: 1, maxLength: 100 } }),
  });

const CreateRun = z
  .object({
    agent_id: z.string().min(1).max(64),
    project_id: z.string().min(1).max(64),
    input: Input,
    prompt_key: PromptKey.optional().openapi({ description: "Use this prompt instead of the agent's" }),
    prompt_version: z.number().int().min(1).optional().openapi({ description: "Pin a version instead of the traffic weights" }),
  })
  .openapi("CreateRun");

const IdParam = z.object({ id: z.string().min(1).max(64) });

const createRun = createRoute({
  method: "post",
  path: "/v1/runs",
  tags: ["Runs"],
  summary: "Queue a run of an agent",
  description:
    "Answers 202 with the run PENDING; the runs queue executes it. With an Idempotency-Key, the same key and body return the same run (header Idempotent-Replayed: true) and another body is 409.",
  ...guarded("runs:write"),
  request: { headers: z.object({ "idempotency-key": IdempotencyKey }), body: jsonBody(CreateRun) },
  responses: { 202: jsonResponse(RunSchema, "The queued run"), ...errors(400, 401, 403, 404, 409, 415, 429, 503) },
});

const listRuns = createRoute({
  method: "get",
  path: "/v1/runs",
  tags: ["Runs"],
  summary: "List runs, newest first",
  ...guarded("runs:read"),
  request: {
    query: PageQuery.extend({
      status: z.enum(RUN_STATUSES).optional(),
      agent_id: z.string().min(1).max(64).optional(),
      project_id: z.string().min(1).max(64).optional(),
    }),
  },
  responses: { 200: jsonResponse(pageOf(RunSchema), "A page of runs"), ...errors(400, 401, 403) },
});

const getRun = createRoute({
  method: "get",
  path: "/v1/runs/{id}",
  tags: ["Runs"],
  summary: "Get a run",
  ...guarded("runs:read"),
  request: { params: IdParam },
  responses: { 200: jsonResponse(RunSchema, "The run"), ...errors(401, 403, 404) },
});

const cancelRun = createRoute({
  method: "post",
  path: "/v1/runs/{id}/cancel",
  tags: ["Runs"],
  summary: "Cancel a run",
  description:
    "A PENDING run is CANCELED at once (200). A RUNNING one is asked to stop (202, `cancel_requested_at` set): its model call is stopped within about a second and the run ends CANCELED with the output so far, billed. A finished run is 409.",
  ...guarded("runs:write"),
  request: { params: IdParam },
  responses: { 200: jsonResponse(RunSchema, "Canceled"), 202: jsonResponse(RunSchema, "Cancel requested; the run is stopping"), ...errors(401, 403, 404, 409) },
});

const runEvents = createRoute({
  method: "get",
  path: "/v1/runs/{id}/events",
  tags: ["Runs"],
  summary: "The run's status changes as server-sent events",
  description:
    "Every event so far (or after `Last-Event-ID`), then each new one as it happens: `run.created`, `run.started`, `run.retrying`, then `run.succeeded`, `run.failed` or `run.canceled`, after which the stream ends. Event ids are stable: reconnect with Last-Event-ID to resume.",
  ...guarded("runs:read", "connection"),
  request: { params: IdParam, headers: z.object({ "last-event-id": z.string().max(64).optional() }) },
  responses: { 200: { description: "text/event-stream", content: { "text/event-stream": { schema: z.string() } } }, ...errors(401, 403, 404) },
});

/** Runs: queued executions of agents. */
export const runRoutes = router()
  .openapi(createRun, async (c) => {
    const { run, replayed } = await runService.createRun(c, c.req.valid("json"), c.req.valid("header")["idempotency-key"]);
    return c.json(renderRun(run), 202, { location: `/v1/runs/${run.id}`, ...(replayed && { "idempotent-replayed": "true" }) });
  })
  .openapi(listRuns, async (c) => c.json(await runService.listRuns(c, c.req.valid("query"), renderRun), 200))
  .openapi(getRun, async (c) => c.json(renderRun(await runService.findRun(c, c.req.valid("param").id)), 200))
  .openapi(cancelRun, async (c) => {
    const run = await runService.cancelRun(c, c.req.valid("param").id);
    return run.status === "CANCELED" ? c.json(renderRun(run), 200) : c.json(renderRun(run), 202);
  })
  .openapi(runEvents, async (c) => {
    const run = await runService.findRun(c, c.req.valid("param").id);
    return streamRunEvents(c, run, c.req.valid("header")["last-event-id"]);
  });
