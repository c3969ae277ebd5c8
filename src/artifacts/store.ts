import { newId } from "../lib/ids";

/** The largest artifact version accepted. */
export const MAX_ARTIFACT_BYTES = 25 * 1024 * 1024;

/**
 * Where a version's bytes live: under the tenant's prefix, in a key of its own for every upload,
 * so no upload can ever replace another's bytes (a failed upload leaves only its own key to delete).
 */
export function contentKey(tenantId: string, artifactId: string): string {
  return `tenants/${tenantId}/artifacts/${artifactId}/${newId("upl")}`;
}

/** Where a knowledge document's original lives: beside artifacts under the tenant's prefix, a fresh key per upload. */
export function documentKey(tenantId: string, documentId: string): string {
  return `tenants/${tenantId}/knowledge/${documentId}/${newId("upl")}`;
}

export interface StoredContent {
  key: string;
  size: number;
  sha256: string;
}

/** The client stopped sending the body (it disconnected or stalled out): its doing, not a server error. */
export class ClientAborted extends Error {
  override readonly name = "ClientAborted";
}

/** The body ended before, or ran past, its declared Content-Length. */
export class ContentLengthMismatch extends Error {
  override readonly name = "ContentLengthMismatch";
}

/**
 * Streams `body` into R2 at `key`, hashing it on the way through: nothing is held in memory but
 * the chunks in flight. `length` is the declared Content-Length; a body that ends short of it or
 * runs past it fails the write with ContentLengthMismatch.
 */
export async function putContent(bucket: R2Bucket, key: string, body: ReadableStream<Uint8Array> | null, length: number, contentType: string): Promise<StoredContent> {
  const digest = new crypto.DigestStream("SHA-256");
  const hash = digest.getWriter();
  let size = 0;
  let mismatch = false;
  const wrongLength = () => {
    mismatch = true;
    return new ContentLengthMismatch(`the body is not the ${length} bytes its Content-Length declared`);
  };
  // Each chunk goes to the digest as it passes; the transform waits on the digest only when its
  // queue is full (backpressure), not once per chunk.
  let hashed: Promise<void> = Promise.resolve();
  const hashing = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      size += chunk.byteLength;
      if (size > length) throw wrongLength();
      hashed = hash.write(chunk);
      controller.enqueue(chunk);
      if ((hash.desiredSize ?? 1) <= 0) return hashed;
    },
    async flush() {
      if (size !== length) throw wrongLength();
      await hashed;
      await hash.close();
    },
  });
  // Reads of the client's body go through this, so a failure there is known to be the client's.
  let clientFailed = false;
  const reader = body?.getReader();
  const source = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!reader) return controller.close();
      try {
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (err) {
        clientFailed = true;
        controller.error(err);
      }
    },
    cancel: (reason) => reader?.cancel(reason),
  });
  try {
    await bucket.put(key, source.pipeThrough(hashing).pipeThrough(new FixedLengthStream(length)), { httpMetadata: { contentType } });
  } catch (err) {
    // The digest will never complete; nobody waits for it.
    digest.digest.catch(() => {});
    await hash.abort(err).catch(() => {});
    // R2 may report the stream's failure in its own words; the flags say what really happened.
    if (mismatch) throw wrongLength();
    if (clientFailed) throw new ClientAborted(`the client stopped sending after ${size} of ${length} bytes`, { cause: err });
    throw err;
  }
  const sha256 = [...new Uint8Array(await digest.digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return { key, size, sha256 };
}

/** One byte range, inclusive start, exclusive end. */
export interface ByteRange {
  offset: number;
  length: number;
}

/**
 * Parses a `Range` header against a size (RFC 9110 §14.1.2). Returns null to serve the whole body
 * (no header, another unit, several ranges, or garbage: all allowed to be ignored) and
 * "unsatisfiable" when the one range asked for lies outside the content.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | null | "unsatisfiable" {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return null;
  if (m[1] === "") {
    // The last n bytes.
    const n = Number(m[2]);
    if (n === 0 || size === 0) return "unsatisfiable";
    const length = Math.min(n, size);
    return { offset: size - length, length };
  }
  const start = Number(m[1]);
  // A last position before the first makes the range invalid, and an invalid range is ignored (§14.1.1).
  if (m[2] !== "" && Number(m[2]) < start) return null;
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size) return "unsatisfiable";
  return { offset: start, length: end - start + 1 };
}

/** True when an `If-None-Match` / `If-Match` list names `etag` (weak comparison; `*` matches all). */
export function etagListMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  const bare = (t: string) => t.trim().replace(/^W\//, "");
  return header.split(",").some((t) => t.trim() === "*" || bare(t) === bare(etag));
}
