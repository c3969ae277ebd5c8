import { type AiProvider, type ChatRequest, type ChatResult, estimateTokens, ProviderError } from "./types";

/** Text that makes the local model fail part-way (a transient failure, like a 5xx), so failures can be exercised offline. */
export const LOCAL_FAILURE_TRIGGER = "[[simulate provider failure]]";
/** Text that makes the local model refuse the request outright, like a 4xx: trying again cannot help. */
export const LOCAL_REJECTION_TRIGGER = "[[simulate rejected request]]";
/**
 * `[[simulate provider failure 2x]]`: the first 2 calls with this exact prompt fail (transiently),
 * later ones succeed. Counted per isolate: a test aid for retries, not something to rely on across isolates.
 */
const FAIL_TIMES = /\[\[simulate provider failure (\d+)x\]\]/;
const failuresSoFar = new Map<string, number>();
/**
 * In a request for JSON, text that makes the local model answer with JSON that does not parse:
 * always, or (`[[simulate malformed output 2x]]`) the first 2 times for the conversation.
 */
export const LOCAL_MALFORMED_TRIGGER = "[[simulate malformed output]]";
const MALFORMED_TIMES = /\[\[simulate malformed output (\d+)x\]\]/;
const malformedSoFar = new Map<string, number>();

/**
 * A deterministic stand-in for a model, for development and tests: it answers the last user
 * message with a fixed sentence, word by word, `wordDelayMs` apart, citing the knowledge excerpts
 * the prompt carries. Same prompt, same reply.
 */
export class LocalAiProvider implements AiProvider {
  readonly name = "local" as const;

  constructor(private readonly wordDelayMs: number) {}

  async chat(request: ChatRequest, onDelta: (text: string) => void): Promise<ChatResult> {
    const lastUser = request.messages.findLast((m) => m.role === "user")?.content ?? "";
    const turns = request.messages.filter((m) => m.role !== "system").length;
    // Knowledge excerpts in the prompt (`[n] name` lines) are cited, as a grounded model would.
    const sources = request.messages.filter((m) => m.role === "system").flatMap((m) => [...m.content.matchAll(/^\[(\d+)\] (.+)$/gm)].map((x) => `[${x[1]}] ${x[2]}`));
    const cited = sources.length ? ` Sources: ${sources.join("; ")}.` : "";
    const reply = request.responseFormat
      ? structuredReply(request)
      : `Local model reply to "${lastUser.slice(0, 200)}" (turn ${turns}, ${request.messages.length} messages in the prompt).${cited}`;
    const failTimes = FAIL_TIMES.exec(lastUser);
    if (failTimes) {
      const seen = failuresSoFar.get(lastUser) ?? 0;
      if (seen < Number(failTimes[1])) {
        failuresSoFar.set(lastUser, seen + 1);
        throw new ProviderError(`local model: simulated transient failure ${seen + 1} of ${failTimes[1]}`);
      }
    }
    if (lastUser.includes(LOCAL_REJECTION_TRIGGER)) throw new ProviderError("local model: simulated rejected request (400)", { retryable: false });
    const words = reply.split(/(?<= )/);
    let text = "";
    for (const [i, word] of words.entries()) {
      if (request.signal?.aborted) break;
      // The output limit holds here as it does at a real provider: the reply stops before passing it.
      if (request.maxTokens !== undefined && estimateTokens(text + word) > request.maxTokens) break;
      if (lastUser.includes(LOCAL_FAILURE_TRIGGER) && i === Math.min(3, words.length - 1)) {
        throw new ProviderError("local model: simulated provider failure");
      }
      if (this.wordDelayMs > 0) await new Promise((r) => setTimeout(r, this.wordDelayMs));
      text += word;
      onDelta(word);
    }
    const prompt = request.messages.map((m) => m.content).join("\n");
    return { text, usage: { inputTokens: estimateTokens(prompt), outputTokens: estimateTokens(text) }, model: request.model, provider: this.name };
  }

  /**
   * A deterministic, lexical embedding — not a language model: each text's words (lowercased, a
   * plural or -ing/-ed ending cut, common function words such as "the" or "do" left out) and word
   * pairs are hashed into EMBEDDING_DIMENSIONS signed buckets, and the vector is scaled to unit length. Texts that share words are near each other;
   * equal texts are equal; synonyms are not. It has the dimensions of the default embedding model,
   * so a knowledge base's vectors keep their shape whichever provider made them.
   */
  async embed(texts: string[]): Promise<number[][]> {
    // The same triggers as chat, so ingestion's failure paths can be exercised offline.
    if (texts.some((t) => t.includes(LOCAL_REJECTION_TRIGGER))) throw new ProviderError("local model: simulated rejected embedding request (400)", { retryable: false });
    if (texts.some((t) => t.includes(LOCAL_FAILURE_TRIGGER))) throw new ProviderError("local model: simulated embedding failure");
    return texts.map(lexicalEmbedding);
  }
}

/**
 * The local model's answer to a request for JSON: a value built from the JSON Schema itself —
 * objects with every property, arrays of their least length (at least one), the enum's values in
 * turn, numbers at their minimum, and strings naming their place and the request's subject (the
 * first line of the first user message) within their length limits. Deterministic, and valid
 * unless a malformed-output trigger asks otherwise.
 */
function structuredReply(request: ChatRequest): string {
  const firstUser = request.messages.find((m) => m.role === "user")?.content ?? "";
  const everything = request.messages.map((m) => m.content).join("\n");
  const times = MALFORMED_TIMES.exec(everything);
  if (everything.includes(LOCAL_MALFORMED_TRIGGER)) return '{"answer": [ {"cut": "short';
  if (times) {
    const seen = malformedSoFar.get(firstUser) ?? 0;
    if (seen < Number(times[1])) {
      malformedSoFar.set(firstUser, seen + 1);
      return "Sure! Here is what you asked for, though not as JSON.";
    }
  }
  const subject = (firstUser.split("\n")[0] ?? "").slice(0, 80);
  return JSON.stringify(fromSchema(request.responseFormat!.json_schema, "answer", 0, subject));
}

type Schema = { type?: string | string[]; properties?: Record<string, Schema>; items?: Schema; enum?: unknown[]; const?: unknown; minItems?: number; minLength?: number; maxLength?: number; minimum?: number; description?: string; anyOf?: Schema[] };

function fromSchema(schema: Schema, name: string, index: number, subject: string): unknown {
  if (schema.const !== undefined) return schema.const;
  if (schema.enum?.length) return schema.enum[index % schema.enum.length];
  if (schema.anyOf?.length) return fromSchema(schema.anyOf.find((s) => s.type !== "null") ?? schema.anyOf[0]!, name, index, subject);
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  switch (type) {
    case "object":
      return Object.fromEntries(Object.entries(schema.properties ?? {}).map(([key, s]) => [key, fromSchema(s, key, index, subject)]));
    case "array":
      return Array.from({ length: Math.max(1, schema.minItems ?? 1) }, (_, i) => fromSchema(schema.items ?? {}, name, i, subject));
    case "integer":
    case "number":
      return schema.minimum ?? index;
    case "boolean":
      return index % 2 === 0;
    default: {
      const text = `${name} ${index + 1}: ${subject}`.slice(0, schema.maxLength ?? 1000);
      return text.padEnd(schema.minLength ?? 0, ".");
    }
  }
}

/** The dimensions of `@cf/baai/bge-base-en-v1.5`, the default embedding model. */
export const EMBEDDING_DIMENSIONS = 768;

function lexicalEmbedding(text: string): number[] {
  const v = new Array<number>(EMBEDDING_DIMENSIONS).fill(0);
  const all = text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  // Function words say little about what a text is about; a text of nothing else keeps them.
  const content = all.filter((w) => !STOPWORDS.has(w));
  const words = (content.length ? content : all).map(stem);
  const add = (feature: string, weight: number) => {
    const h = fnv1a(feature);
    v[h % EMBEDDING_DIMENSIONS]! += h & 0x80000000 ? -weight : weight;
  };
  for (const [i, word] of words.entries()) {
    add(word, 1);
    if (i > 0) add(`${words[i - 1]} ${word}`, 0.5);
  }
  const norm = Math.hypot(...v);
  // A text without words still gets a unit vector (the same for all of them).
  if (norm === 0) return v.map((_, i) => (i === 0 ? 1 : 0));
  return v.map((x) => x / norm);
}

const STOPWORDS = new Set(
  ("a about after all also am an and any are as at be because been before being but by can could did do does doing for from had has have " +
    "he her here him his how i if in into is it its just me more most my no not now of on once only or other our out over own same she " +
    "should so some such than that the their them then there these they this those through to too under until up very was we were what " +
    "when where which while who whom why will with would you your yours")
    .split(" "),
);

const stem = (w: string) => (w.length > 4 ? w.replace(/(ing|ed|es|s)$/, "") : w);

/** FNV-1a, 32 bits, over UTF-16 code units: a fast stable hash for feature buckets. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}
