import { estimateTokens } from "../providers/ai/types";

/** The media types a document may have, as the upload's Content-Type names them (parameters aside). */
export const DOCUMENT_TYPES = ["text/plain", "text/markdown", "text/html", "application/json"] as const;
export type DocumentType = (typeof DOCUMENT_TYPES)[number];

/** The largest document accepted, and the most text tokens one may hold (more is `too_many_tokens`). */
export const MAX_DOCUMENT_BYTES = 10 * 1024 * 1024;
export const MAX_DOCUMENT_TOKENS = 1_000_000;

/** Why a document could not be ingested: a code for machines and a sentence for people, never "could not be parsed". */
export class IngestError extends Error {
  override readonly name = "IngestError";
  constructor(
    readonly code: "empty_document" | "unsupported_encoding" | "invalid_json" | "too_many_tokens" | "provider_refused" | "quota_exceeded" | "ingest_exhausted",
    message: string,
  ) {
    super(message);
  }
}

/** The document type a Content-Type names, or null when it is not one we read. */
export function documentType(contentType: string): DocumentType | null {
  const bare = contentType.split(";")[0]!.trim().toLowerCase();
  const known = bare === "text/x-markdown" ? "text/markdown" : bare;
  return (DOCUMENT_TYPES as readonly string[]).includes(known) ? (known as DocumentType) : null;
}

function charsetOf(contentType: string): string {
  return /;\s*charset="?([^";\s]+)"?/i.exec(contentType)?.[1]?.toLowerCase() ?? "utf-8";
}

/** Decodes the bytes in the charset the Content-Type names (UTF-8 by default), refusing bytes that are not in it. */
function decode(bytes: ArrayBuffer, contentType: string): string {
  const charset = charsetOf(contentType);
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(charset, { fatal: true, ignoreBOM: false });
  } catch {
    throw new IngestError("unsupported_encoding", `The charset ${charset} is not one the platform reads; send UTF-8`);
  }
  try {
    return decoder.decode(bytes);
  } catch {
    throw new IngestError("unsupported_encoding", `The document is not valid ${charset} (a binary file, or text in another encoding); send UTF-8 text`);
  }
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: " ", mdash: "—", ndash: "–", hellip: "…", rsquo: "’", lsquo: "‘", rdquo: "”", ldquo: "“", copy: "©", reg: "®" };

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, name: string) => {
    if (name[0] === "#") {
      const code = name[1] === "x" || name[1] === "X" ? Number.parseInt(name.slice(2), 16) : Number(name.slice(1));
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES[name.toLowerCase()] ?? whole;
  });
}

const BLOCK = /<\/?(p|div|br|hr|h[1-6]|li|ul|ol|tr|td|th|table|section|article|header|footer|blockquote|pre|main|nav|aside|dd|dt|figcaption)\b[^>]*>/gi;

/** The text a reader sees in an HTML page: scripts, styles and comments dropped, tags stripped, block elements as line breaks. */
export function htmlText(html: string): string {
  const text = html
    .replace(/<!--[\s\S]*?-->/g, " ")
    .replace(/<(script|style|noscript|template|svg|head)\b[\s\S]*?<\/\1\s*>/gi, " ")
    .replace(BLOCK, "\n")
    .replace(/<[^>]*>/g, " ");
  return decodeEntities(text)
    .split("\n")
    .map((line) => line.replace(/[ \t\f\v\u00a0]+/g, " ").trim())
    .join("\n")
    .replace(/\n{3,}/g, "\n\n");
}

/** A JSON document as lines of `path: value`, so its keys are searchable beside its values. */
export function jsonText(source: string): string {
  let value: unknown;
  try {
    value = JSON.parse(source);
  } catch (err) {
    throw new IngestError("invalid_json", `The document is not valid JSON: ${(err as Error).message}`);
  }
  const lines: string[] = [];
  const walk = (v: unknown, path: string) => {
    if (v !== null && typeof v === "object") {
      for (const [k, child] of Array.isArray(v) ? v.entries() : Object.entries(v)) walk(child, path ? `${path}.${k}` : String(k));
    } else if (v !== null && v !== "") {
      lines.push(path ? `${path}: ${String(v)}` : String(v));
    }
  };
  walk(value, "");
  return lines.join("\n");
}

/** The plain text of a document's bytes, by its type. Throws IngestError for bytes it cannot read as that type. */
export function extractText(bytes: ArrayBuffer, contentType: string): string {
  const type = documentType(contentType);
  const source = decode(bytes, contentType);
  const text = type === "text/html" ? htmlText(source) : type === "application/json" ? jsonText(source) : source.replace(/\r\n?/g, "\n");
  if (!text.trim()) throw new IngestError("empty_document", bytes.byteLength ? "The document has no text once extracted" : "The document is empty");
  return text;
}

/** One chunk of a document's text, with its estimated tokens. */
export interface Chunk {
  text: string;
  tokens: number;
}

/** Pieces no longer than `max` tokens: paragraphs, else sentences, else runs of words. */
function pieces(text: string, max: number): string[] {
  const out: string[] = [];
  for (const paragraph of text.split(/\n\s*\n/)) {
    const p = paragraph.trim();
    if (!p) continue;
    if (estimateTokens(p) <= max) {
      out.push(p);
      continue;
    }
    for (const sentence of p.split(/(?<=[.!?])\s+/)) {
      if (estimateTokens(sentence) <= max) {
        out.push(sentence);
        continue;
      }
      let run = "";
      for (const word of sentence.split(/\s+/)) {
        // A "word" longer than a chunk (a base64 blob, say) is cut where it must be.
        for (let w = word; w; w = w.slice(max * 4)) {
          const part = w.slice(0, max * 4);
          if (run && estimateTokens(`${run} ${part}`) > max) {
            out.push(run);
            run = part;
          } else run = run ? `${run} ${part}` : part;
        }
      }
      if (run) out.push(run);
    }
  }
  return out;
}

/**
 * Cuts text into chunks of at most `maxTokens`, keeping paragraphs and sentences whole where they
 * fit; each chunk begins with the last pieces of the one before, up to `overlapTokens`, so a passage
 * cut at a boundary is whole in one of them. Tokens are estimated at four characters each.
 */
export function chunkText(text: string, maxTokens: number, overlapTokens: number): Chunk[] {
  const parts = pieces(text, maxTokens);
  const chunks: Chunk[] = [];
  let current: string[] = [];
  let fresh = 0;
  const tokensOf = (ps: string[]) => estimateTokens(ps.join("\n\n"));
  for (const part of parts) {
    if (current.length && tokensOf([...current, part]) > maxTokens) {
      chunks.push({ text: current.join("\n\n"), tokens: tokensOf(current) });
      // Carry the tail of this chunk into the next, within the overlap and leaving room for the new piece.
      const carried: string[] = [];
      for (let i = current.length - 1; i >= 0; i--) {
        const next = [current[i]!, ...carried];
        if (tokensOf(next) > overlapTokens || tokensOf([...next, part]) > maxTokens) break;
        carried.unshift(current[i]!);
      }
      current = carried;
      fresh = 0;
    }
    current.push(part);
    fresh++;
  }
  if (current.length && fresh > 0) chunks.push({ text: current.join("\n\n"), tokens: tokensOf(current) });
  return chunks;
}
