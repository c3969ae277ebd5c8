import type { Context } from "hono";
import type { AppEnv } from "../context";
import { ApiError } from "../lib/errors";
import type { VersionRow } from "./service";
import { etagListMatches, parseRange } from "./store";
import { bucketOf } from "../tenants/residency";

/**
 * Answers a GET of a version's bytes from R2: strong ETag, conditional requests (If-Match,
 * If-None-Match, If-Range) and one byte range; sandboxed, since user content must never run as a
 * page on the API's origin.
 */
export async function serveContent(c: Context<AppEnv>, v: VersionRow): Promise<Response> {
  const etag = `"${v.sha256}"`;
  const headers = new Headers({
    etag,
    "accept-ranges": "bytes",
    // A version never changes, so a client may keep it as long as it likes (but no shared cache: it is private).
    "cache-control": "private, max-age=31536000, immutable",
    "last-modified": new Date(v.createdAt).toUTCString(),
    // User content served from the API's origin must never run as a page there.
    "content-security-policy": "sandbox",
    "x-content-type-options": "nosniff",
    "x-request-id": c.var.requestId,
  });
  const ifMatch = c.req.header("if-match");
  if (ifMatch && !etagListMatches(ifMatch, etag)) throw new ApiError("PRECONDITION_FAILED", `If-Match does not name this version's ETag ${etag}`);
  if (etagListMatches(c.req.header("if-none-match"), etag)) return new Response(null, { status: 304, headers });
  const ifRange = c.req.header("if-range");
  const range = ifRange && ifRange.trim() !== etag ? null : parseRange(c.req.header("range"), v.size);
  if (range === "unsatisfiable") {
    throw new ApiError("RANGE_NOT_SATISFIABLE", `The content is ${v.size} bytes`, { headers: { "content-range": `bytes */${v.size}` } });
  }
  const object = await bucketOf(c.env, c.var.tenant).get(v.r2Key, range ? { range } : undefined);
  if (!object) throw new Error(`artifact ${v.artifactId} version ${v.version}: object ${v.r2Key} is missing from R2`);
  headers.set("content-type", v.contentType);
  if (!range) {
    headers.set("content-length", String(v.size));
    return new Response(object.body, { status: 200, headers });
  }
  headers.set("content-length", String(range.length));
  headers.set("content-range", `bytes ${range.offset}-${range.offset + range.length - 1}/${v.size}`);
  return new Response(object.body, { status: 206, headers });
}
