import { createRoute, z } from "@hono/zod-openapi";
import * as personas from "../content/personas";
import { PageQuery } from "../lib/pagination";
import { errors, guarded, jsonBody, jsonResponse, NonBlank, pageOf, router } from "./openapi";

const Lines = (max: number, each: number) => z.array(NonBlank(each)).max(max);
const Content = {
  voice: NonBlank(2000).openapi({ description: "How the brand sounds" }),
  audience: z.string().max(2000).nullable().optional(),
  dos: Lines(30, 500).optional(),
  donts: Lines(30, 500).optional(),
  examples: Lines(10, 5000).optional().openapi({ description: "Example posts in this voice" }),
  banned_words: z.array(z.string().trim().min(1).max(60)).max(200).optional(),
};

const VersionSchema = z
  .object({
    version: z.number().int(),
    voice: z.string(),
    audience: z.string().nullable(),
    dos: z.array(z.string()),
    donts: z.array(z.string()),
    examples: z.array(z.string()),
    banned_words: z.array(z.string()),
    created_by: z.string(),
    created_at: z.string(),
  })
  .openapi("PersonaVersion");
const PersonaSchema = z
  .object({ id: z.string(), project_id: z.string(), name: z.string(), latest_version: z.number().int(), created_by: z.string(), created_at: z.string(), updated_at: z.string() })
  .openapi("Persona");
const PersonaWithVersion = PersonaSchema.extend({ current: VersionSchema }).openapi("PersonaWithVersion");

const IdParam = z.object({ id: z.string().min(1).max(64) });

const create = createRoute({
  method: "post",
  path: "/v1/personas",
  tags: ["Campaigns"],
  summary: "Create a brand persona in a project (version 1)",
  ...guarded("campaigns:write"),
  request: { body: jsonBody(z.object({ project_id: z.string().min(1).max(64), name: NonBlank(200), ...Content }).openapi("CreatePersona")) },
  responses: { 201: jsonResponse(PersonaWithVersion, "The persona"), ...errors(400, 401, 403, 404, 413, 415) },
});

const list = createRoute({
  method: "get",
  path: "/v1/personas",
  tags: ["Campaigns"],
  summary: "List personas, newest first",
  ...guarded("campaigns:read"),
  request: { query: PageQuery.extend({ project_id: z.string().max(64).optional() }) },
  responses: { 200: jsonResponse(pageOf(PersonaSchema), "A page of personas"), ...errors(400, 401, 403) },
});

const get = createRoute({
  method: "get",
  path: "/v1/personas/{id}",
  tags: ["Campaigns"],
  summary: "Get a persona with its latest version",
  ...guarded("campaigns:read"),
  request: { params: IdParam },
  responses: { 200: jsonResponse(PersonaWithVersion, "The persona"), ...errors(401, 403, 404) },
});

const addVersion = createRoute({
  method: "post",
  path: "/v1/personas/{id}/versions",
  tags: ["Campaigns"],
  summary: "Add the next version of a persona (versions are immutable; agents use the latest from their next run)",
  ...guarded("campaigns:write"),
  request: { params: IdParam, body: jsonBody(z.object({ name: NonBlank(200).optional(), ...Content }).openapi("CreatePersonaVersion")) },
  responses: { 201: jsonResponse(PersonaWithVersion, "The persona with its new version"), ...errors(400, 401, 403, 404, 413, 415) },
});

const versions = createRoute({
  method: "get",
  path: "/v1/personas/{id}/versions",
  tags: ["Campaigns"],
  summary: "Every version of a persona, oldest first",
  ...guarded("campaigns:read"),
  request: { params: IdParam },
  responses: { 200: jsonResponse(z.object({ data: z.array(VersionSchema) }), "The versions"), ...errors(401, 403, 404) },
});

const remove = createRoute({
  method: "delete",
  path: "/v1/personas/{id}",
  tags: ["Campaigns"],
  summary: "Delete a persona and its versions (agents naming it stop using one)",
  ...guarded("campaigns:write"),
  request: { params: IdParam },
  responses: { 204: { description: "Deleted" }, ...errors(401, 403, 404) },
});

const renderVersion = (v: personas.PersonaVersionRow): z.infer<typeof VersionSchema> => ({
  version: v.version,
  voice: v.voice,
  audience: v.audience,
  dos: JSON.parse(v.dos) as string[],
  donts: JSON.parse(v.donts) as string[],
  examples: JSON.parse(v.examples) as string[],
  banned_words: JSON.parse(v.bannedWords) as string[],
  created_by: v.createdBy,
  created_at: v.createdAt,
});
const render = (p: personas.PersonaRow): z.infer<typeof PersonaSchema> => ({ id: p.id, project_id: p.projectId, name: p.name, latest_version: p.latestVersion, created_by: p.createdBy, created_at: p.createdAt, updated_at: p.updatedAt });

/** Brand personas: versioned voices that lead the system prompts of the agents naming them. */
export const personaRoutes = router()
  .openapi(create, async (c) => {
    const { persona, version } = await personas.createPersona(c, c.req.valid("json"));
    return c.json({ ...render(persona), current: renderVersion(version) }, 201);
  })
  .openapi(list, async (c) => c.json(await personas.listPersonas(c, c.req.valid("query"), render), 200))
  .openapi(get, async (c) => {
    const persona = await personas.findPersona(c, c.req.valid("param").id);
    return c.json({ ...render(persona), current: renderVersion(await personas.findVersion(c, persona.id, persona.latestVersion)) }, 200);
  })
  .openapi(addVersion, async (c) => {
    const { persona, version } = await personas.addVersion(c, c.req.valid("param").id, c.req.valid("json"));
    return c.json({ ...render(persona), current: renderVersion(version) }, 201);
  })
  .openapi(versions, async (c) => c.json({ data: (await personas.listVersions(c, c.req.valid("param").id)).map(renderVersion) }, 200))
  .openapi(remove, async (c) => {
    await personas.deletePersona(c, c.req.valid("param").id);
    return c.body(null, 204);
  });
