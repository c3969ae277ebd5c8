import { Zip, ZipDeflate, ZipPassThrough } from "fflate";

/**
 * R2 takes a multipart upload's parts at one size (all but the last), at least 5 MiB: the archive
 * is cut into parts of exactly this size as it is written, so at most one part is held in memory.
 */
export const PART_BYTES = 5 * 1024 * 1024;

/** A ZIP without ZIP64 (fflate writes none) holds at most 4 GiB; an export stops well short of it. */
export const MAX_ARCHIVE_BYTES = 2 * 1024 ** 3;

export class ArchiveTooLarge extends Error {
  override readonly name = "ArchiveTooLarge";
}

/** What one file of the archive holds: its uncompressed size and SHA-256. */
export interface ArchivedFile {
  name: string;
  bytes: number;
  sha256: string;
}

/**
 * A ZIP written straight into an R2 multipart upload: files are added one at a time from async
 * sources, each hashed (SHA-256 of its uncompressed bytes) on the way through, and the archive's
 * bytes are cut into parts and uploaded as they fill. Memory stays at one part plus a chunk,
 * however large the archive.
 */
export class ArchiveWriter {
  private readonly zip: Zip;
  /** Bytes the ZIP has produced that are not yet in an uploaded part. */
  private part = new Uint8Array(PART_BYTES);
  private filled = 0;
  private readonly parts: R2UploadedPart[] = [];
  private failure: Error | undefined;
  private ended = false;
  /** Everything the ZIP has produced (the archive's size once closed). */
  written = 0;

  private constructor(private readonly upload: R2MultipartUpload) {
    this.zip = new Zip((err, chunk, final) => {
      if (err) this.failure = err;
      else this.take(chunk);
      if (final) this.ended = true;
    });
  }

  static async open(bucket: R2Bucket, key: string): Promise<ArchiveWriter> {
    return new ArchiveWriter(await bucket.createMultipartUpload(key, { httpMetadata: { contentType: "application/zip" } }));
  }

  /** Adds a file from `source`; `compress` deflates it (text), otherwise it is stored as is (media). */
  async add(name: string, source: AsyncIterable<Uint8Array>, compress: boolean): Promise<ArchivedFile> {
    const file = compress ? new ZipDeflate(name, { level: 6 }) : new ZipPassThrough(name);
    this.zip.add(file);
    const digest = new crypto.DigestStream("SHA-256");
    const hashing = digest.getWriter();
    let bytes = 0;
    for await (const chunk of source) {
      if (!chunk.byteLength) continue;
      bytes += chunk.byteLength;
      await hashing.write(chunk);
      file.push(chunk, false);
      await this.flush();
    }
    file.push(new Uint8Array(0), true);
    await hashing.close();
    await this.flush();
    return { name, bytes, sha256: hex(await digest.digest) };
  }

  /** Ends the archive (its central directory) and completes the upload; answers its size. */
  async close(): Promise<number> {
    this.zip.end();
    if (!this.ended) throw new Error("the archive did not end");
    await this.flush();
    if (this.filled > 0 || this.parts.length === 0) this.parts.push(await this.upload.uploadPart(this.parts.length + 1, this.part.slice(0, this.filled)));
    await this.upload.complete(this.parts);
    return this.written;
  }

  /** Gives up: the parts uploaded so far are discarded. */
  async abort(): Promise<void> {
    await this.upload.abort().catch(() => {});
  }

  private take(chunk: Uint8Array) {
    this.written += chunk.byteLength;
    let offset = 0;
    // The ZIP's callback is synchronous: whole parts wait in `full` for `flush` to upload.
    while (offset < chunk.byteLength) {
      const n = Math.min(PART_BYTES - this.filled, chunk.byteLength - offset);
      this.part.set(chunk.subarray(offset, offset + n), this.filled);
      this.filled += n;
      offset += n;
      if (this.filled === PART_BYTES) {
        this.full.push(this.part);
        this.part = new Uint8Array(PART_BYTES);
        this.filled = 0;
      }
    }
  }

  private full: Uint8Array[] = [];

  private async flush() {
    if (this.failure) throw this.failure;
    if (this.written > MAX_ARCHIVE_BYTES) throw new ArchiveTooLarge(`the archive passed ${MAX_ARCHIVE_BYTES} bytes`);
    while (this.full.length) {
      const part = this.full.shift()!;
      this.parts.push(await this.upload.uploadPart(this.parts.length + 1, part));
    }
  }
}

const hex = (buf: ArrayBuffer) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");

/** NDJSON lines of `rows`, encoded, a page at a time. */
export async function* ndjson(pages: AsyncIterable<unknown[]>, counted: { rows: number }): AsyncIterable<Uint8Array> {
  const encoder = new TextEncoder();
  for await (const rows of pages) {
    if (!rows.length) continue;
    counted.rows += rows.length;
    yield encoder.encode(`${rows.map((r) => JSON.stringify(r)).join("\n")}\n`);
  }
}

/** The bytes of a readable stream as an async iterable (R2 bodies). */
export async function* chunksOf(stream: ReadableStream<Uint8Array>): AsyncIterable<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}
