import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { serveContent } from "../artifacts/content";
import * as artifacts from "../artifacts/service";
import { MAX_ARTIFACT_BYTES } from "../artifacts/store";
import type { AppEnv } from "../context";
import { ARTIFACT_KINDS } from "../db/tenant/schema";
import { ApiError } from "../lib/errors";
import { PageQuery } from "../lib/pagination";
import { errors, guarded, jsonResponse, NonBlank, pageOf, router } from "./openapi";

const VersionSchema = z
  .object({
    version: z.number().int(),
    size: z.number().int(),
    sha256: z.string(),
    content_type: z.string(),
    created_by: z.string(),
    created_at: z.string(),
  })
  .openapi("ArtifactVersion");

const ArtifactSchema = z
  .object({
    id: z.string(),
    project_id: z.string(),
    kind: z.enum(ARTIFACT_KINDS),
    name: z.string(),
    latest_version: z.number().int(),
    run_id: z.string().nullable(),
    created_by: z.string(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("Artifact");

const IdParam = z.object({ id: z.string().min(1).max(64) });
const VersionParam = IdParam.extend({ version: z.coerce.number().int().min(1) });

/** The raw bytes of an upload: any content type, up to 25 MiB, with a Content-Length. */
const uploadBody = {
  required: true,
  description: `The content itself (not JSON-wrapped), at most ${MAX_ARTIFACT_BYTES} bytes, with Content-Length and its Content-Type.`,
  content: { "*/*": { schema: z.string().openapi({ format: "binary" }) } },
};

const createArtifact = createRoute({
  method: "post",
  path: "/v1/artifacts",
  tags: ["Artifacts"],
  summary: "Upload an artifact's first version (streamed to storage)",
  ...guarded("artifacts:write"),
  request: {
    query: z.object({
      project_id: z.string().min(1).max(64),
      kind: z.enum(ARTIFACT_KINDS),
      name: NonBlank(200),
    }),
    body: uploadBody,
  },
  responses: {
    201: jsonResponse(ArtifactSchema.extend({ version: VersionSchema }), "The artifact and its version 1"),
    ...errors(400, 401, 403, 404, 411, 413),
  },
});

const addVersion = createRoute({
  method: "post",
  path: "/v1/artifacts/{id}/versions",
  tags: ["Artifacts"],
  summary: "Upload the next version of an artifact",
  ...guarded("artifacts:write"),
  request: { params: IdParam, body: uploadBody },
  responses: { 201: jsonResponse(VersionSchema, "The new version"), ...errors(400, 401, 403, 404, 411, 413) },
});

const listArtifacts = createRoute({
  method: "get",
  path: "/v1/artifacts",
  tags: ["Artifacts"],
  summary: "List artifacts, newest first",
  ...guarded("artifacts:read"),
  request: {
    query: PageQuery.extend({
      project_id: z.string().min(1).max(64).optional(),
      kind: z.enum(ARTIFACT_KINDS).optional(),
      run_id: z.string().min(1).max(64).optional(),
    }),
  },
  responses: { 200: jsonResponse(pageOf(ArtifactSchema), "A page of artifacts"), ...errors(400, 401, 403) },
});

const getArtifact = createRoute({
  method: "get",
  path: "/v1/artifacts/{id}",
  tags: ["Artifacts"],
  summary: "Get an artifact with its versions",
  ...guarded("artifacts:read"),
  request: { params: IdParam },
  responses: { 200: jsonResponse(ArtifactSchema.extend({ versions: z.array(VersionSchema) }), "The artifact"), ...errors(401, 403, 404) },
});

const getVersion = createRoute({
  method: "get",
  path: "/v1/artifacts/{id}/versions/{version}",
  tags: ["Artifacts"],
  summary: "Get one version's metadata",
  ...guarded("artifacts:read"),
  request: { params: VersionParam },
  responses: { 200: jsonResponse(VersionSchema, "The version"), ...errors(400, 401, 403, 404) },
});

const getContent = createRoute({
  method: "get",
  path: "/v1/artifacts/{id}/versions/{version}/content",
  tags: ["Artifacts"],
  summary: "Download a version's bytes",
  description:
    "Streams from storage. The ETag is the content's SHA-256; If-None-Match answers 304, If-Match 412 when it differs, and a single `Range: bytes=` answers 206 (If-Range honoured).",
  ...guarded("artifacts:read"),
  request: { params: VersionParam },
  responses: {
    200: { description: "The content", content: { "*/*": { schema: z.string().openapi({ format: "binary" }) } } },
    206: { description: "The requested range", content: { "*/*": { schema: z.string().openapi({ format: "binary" }) } } },
    304: { description: "Not modified" },
    ...errors(400, 401, 403, 404, 412, 416),
  },
});

type ArtifactRow = artifacts.ArtifactRow;
type VersionRow = artifacts.VersionRow;

const render = (a: ArtifactRow): z.infer<typeof ArtifactSchema> => ({
  id: a.id,
  project_id: a.projectId,
  kind: a.kind,
  name: a.name,
  latest_version: a.latestVersion,
  run_id: a.runId,
  created_by: a.createdBy,
  created_at: a.createdAt,
  updated_at: a.updatedAt,
});

const renderVersion = (v: VersionRow): z.infer<typeof VersionSchema> => ({
  version: v.version,
  size: v.size,
  sha256: v.sha256,
  content_type: v.contentType,
  created_by: v.createdBy,
  created_at: v.createdAt,
});

/** Answers the methods a path does not take: versions (and artifacts) are never changed or deleted through the API. */
const only = (allow: string) => (c: Context<AppEnv>) => {
  throw new ApiError("METHOD_NOT_ALLOWED", `${c.req.method} is not allowed here: artifact versions are immutable; upload a new version instead`, { headers: { allow } });
};

/** Artifacts: immutable versions in R2 under the tenant's prefix, metadata in the tenant's D1. */
export const artifactRoutes = router()
  .openapi(createArtifact, async (c) => {
    const { artifact, version } = await artifacts.createArtifact(c, c.req.valid("query"));
    return c.json({ ...render(artifact), version: renderVersion(version) }, 201);
  })
  .openapi(addVersion, async (c) => c.json(renderVersion(await artifacts.addVersion(c, c.req.valid("param").id)), 201))
  .openapi(listArtifacts, async (c) => c.json(await artifacts.listArtifacts(c, c.req.valid("query"), render), 200))
  .openapi(getArtifact, async (c) => {
    const { artifact, versions } = await artifacts.artifactWithVersions(c, c.req.valid("param").id);
    return c.json({ ...render(artifact), versions: versions.map(renderVersion) }, 200);
  })
  .openapi(getVersion, async (c) => {
    const { id, version } = c.req.valid("param");
    return c.json(renderVersion(await artifacts.findVersion(c, id, version)), 200);
  })
  .openapi(getContent, async (c) => {
    const { id, version } = c.req.valid("param");
    return serveContent(c, await artifacts.findVersion(c, id, version));
  });

// Registered after the routes above, so they only see the methods those do not take.
artifactRoutes.all("/v1/artifacts/:id/versions/:version/content", only("GET, HEAD"));
artifactRoutes.all("/v1/artifacts/:id/versions/:version", only("GET, HEAD"));
artifactRoutes.all("/v1/artifacts/:id/versions", only("POST"));
artifactRoutes.all("/v1/artifacts/:id", only("GET, HEAD"));
