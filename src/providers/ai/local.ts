import { type AiProvider, type ChatRequest, type ChatResult, estimateTokens, ProviderError } from "./types";

/** Text that makes the local model fail part-way, so a provider failure can be exercised offline. */
export const LOCAL_FAILURE_TRIGGER = "[[simulate provider failure]]";

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
    const words = reply.split(/(?<= )/);
    let text = "";
    for (const [i, word] of words.entries()) {
      if (request.signal?.aborted) break;
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
