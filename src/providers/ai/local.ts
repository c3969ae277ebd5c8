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

const EMBEDDING_DIMENSIONS = 32;

/**
 * A deterministic stand-in for a model, for development and tests: it answers the last user
 * message with a fixed sentence, word by word, `wordDelayMs` apart. Same prompt, same reply.
 */
export class LocalAiProvider implements AiProvider {
  readonly name = "local" as const;

  constructor(private readonly wordDelayMs: number) {}

  async chat(request: ChatRequest, onDelta: (text: string) => void): Promise<ChatResult> {
    const lastUser = request.messages.findLast((m) => m.role === "user")?.content ?? "";
    const turns = request.messages.filter((m) => m.role !== "system").length;
    const reply = `Local model reply to "${lastUser.slice(0, 200)}" (turn ${turns}, ${request.messages.length} messages in the prompt).`;
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

  /** Deterministic unit vectors from a hash of each text: equal texts, equal vectors. */
  async embed(texts: string[]): Promise<number[][]> {
    return Promise.all(
      texts.map(async (t) => {
        const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(t)));
        const v = Array.from({ length: EMBEDDING_DIMENSIONS }, (_, i) => digest[i % digest.length]! / 255 - 0.5);
        const norm = Math.hypot(...v) || 1;
        return v.map((x) => x / norm);
      }),
    );
  }
}
