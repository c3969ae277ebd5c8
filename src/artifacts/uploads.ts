import type { Context } from "hono";
import type { AppEnv } from "../context";
import { storageUsedQuery } from "../db/artifacts";
import { ApiError } from "../lib/errors";
import { ClientAborted, ContentLengthMismatch, putContent, type StoredContent } from "./store";
import { bucketOf } from "../tenants/residency";

/**
 * Uploads streamed from a request body into R2: artifact versions and knowledge documents. Both
 * count against the plan's storage, are checked before a byte is read, and leave nothing behind
 * when the body is not what its headers said or the database refuses the record.
 */

const CONTENT_TYPE = /^[\w!#$&^.+-]+\/[\w!#$&^.+-]+(\s*;.*)?$/;

/**
 * Checks an upload's headers before a byte is read: a Content-Length within `maxBytes` and within
 * what the plan's storage has left (counting `replacing` bytes the upload will free), and a sane Content-Type.
 */
export async function uploadHeaders(c: Context<AppEnv>, maxBytes: number, noun: string, replacing = 0): Promise<{ length: number; contentType: string }> {
  const declared = c.req.header("content-length");
  if (declared === undefined || !/^\d+$/.test(declared)) {
    throw new ApiError("LENGTH_REQUIRED", "Send the content with a Content-Length header (chunked uploads are not accepted)", {
      errors: [{ in: "header", field: "content-length", message: "required" }],
    });
  }
  const length = Number(declared);
  if (length > maxBytes) throw new ApiError("PAYLOAD_TOO_LARGE", `${noun} are limited to ${maxBytes} bytes; this one is ${length}`);
  const contentType = (c.req.header("content-type") ?? "application/octet-stream").trim();
  if (!CONTENT_TYPE.test(contentType) || contentType.length > 200) {
    throw new ApiError("VALIDATION_FAILED", "Content-Type is not a media type", { errors: [{ in: "header", field: "content-type", message: "a media type such as text/markdown" }] });
  }
  await checkStorage(c, length - replacing);
  return { length, contentType };
}

async function checkStorage(c: Context<AppEnv>, adding: number) {
  const plan = c.var.plan;
  const [row] = await storageUsedQuery(c.var.db, c.var.tenant.id);
  if ((row?.bytes ?? 0) + adding > plan.storageBytes) throw storageFull(c);
}

/** The answer when an upload would pass the plan's storage. */
export const storageFull = (c: Context<AppEnv>) =>
  new ApiError("PLAN_LIMIT", `The ${c.var.plan.name} plan stores ${c.var.plan.storageBytes} bytes of artifacts and documents; this upload would pass it`);

/** Streams the request body to `key`; a body that is not what its headers said is a 400, and leaves nothing behind. */
export async function upload(c: Context<AppEnv>, key: string, length: number, contentType: string): Promise<StoredContent> {
  try {
    return await putContent(bucketOf(c.env, c.var.tenant), key, c.req.raw.body, length, contentType);
  } catch (err) {
    await bucketOf(c.env, c.var.tenant).delete(key).catch(() => {});
    if (err instanceof ClientAborted) {
      // The client's own doing: no stack, no error level; answered in case anyone still listens.
      c.var.log.info("upload.aborted", { key, reason: err.message });
      throw new ApiError("REQUEST_ABORTED", "The upload stopped before its Content-Length was reached; nothing was stored");
    }
    if (!(err instanceof ContentLengthMismatch)) throw err;
    // A body shorter or longer than declared is also the client's doing (often a disconnect): no stack.
    c.var.log.info("upload.incomplete", { key, reason: err.message });
    throw new ApiError("VALIDATION_FAILED", "The body did not match its Content-Length", { errors: [{ in: "header", field: "content-length", message: err.message }] });
  }
}

/** Runs the batch that records an upload; if it fails or records nothing, the uploaded bytes are deleted before answering. */
export async function recordUpload<T>(c: Context<AppEnv>, key: string, write: () => Promise<T>, wrote: (result: T) => boolean): Promise<T> {
  let result: T;
  try {
    result = await write();
  } catch (err) {
    await bucketOf(c.env, c.var.tenant).delete(key);
    throw err;
  }
  if (!wrote(result)) await bucketOf(c.env, c.var.tenant).delete(key);
  return result;
}
