import { type AiProvider, type ChatRequest, type ChatResult, estimateTokens, ProviderError } from "./types";

/** The embedding model behind `embed`. */
export const WORKERS_AI_EMBEDDING_MODEL = "@cf/baai/bge-base-en-v1.5";

/**
 * Workers AI error codes that trying again cannot fix: 5xxx (no such model, model not allowed) and
 * 8xxx (invalid input). Others (3xxx capacity and internal errors, time-outs) are transient.
 */
const PERMANENT_ERROR = /\b[58]\d{3}\b/;

/** The part of the `AI` binding this provider uses. */
export interface AiBinding {
  run(model: string, inputs: Record<string, unknown>, options?: Record<string, unknown>): Promise<unknown>;
}

/** Workers AI through the `AI` binding: server-sent events for chat, batched embeddings. */
export class WorkersAiProvider implements AiProvider {
  readonly name = "workers-ai" as const;

  constructor(private readonly ai: AiBinding) {}

  async chat(request: ChatRequest, onDelta: (text: string) => void): Promise<ChatResult> {
    // JSON mode answers whole (it does not stream): the answer arrives as one delta.
    const structured = Boolean(request.responseFormat);
    let stream: unknown;
    try {
      const inputs: Record<string, unknown> = { messages: request.messages, stream: !structured, max_tokens: request.maxTokens ?? 1024 };
      if (request.temperature !== undefined) inputs.temperature = request.temperature;
      if (request.tools?.length) inputs.tools = request.tools.map((t) => ({ type: "function", function: t }));
      if (request.responseFormat) inputs.response_format = request.responseFormat;
      stream = await this.ai.run(request.model, inputs, { signal: request.signal });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new ProviderError(`Workers AI ${request.model}: ${message}`, { cause: err, retryable: !PERMANENT_ERROR.test(message) });
    }
    if (structured) return this.whole(request, stream, onDelta);
    if (!(stream instanceof ReadableStream)) throw new ProviderError(`Workers AI ${request.model} did not stream`);
    let text = "";
    let usage: { prompt_tokens?: number; completion_tokens?: number } | undefined;
    for await (const event of sseEvents(stream as ReadableStream<Uint8Array>)) {
      if (event === "[DONE]") break;
      let data: { response?: string; usage?: typeof usage };
      try {
        data = JSON.parse(event) as typeof data;
      } catch {
        throw new ProviderError(`Workers AI ${request.model} sent an unreadable event`);
      }
      if (data.response) {
        text += data.response;
        onDelta(data.response);
      }
      if (data.usage) usage = data.usage;
    }
    const prompt = request.messages.map((m) => m.content).join("\n");
    return {
      text,
      usage: { inputTokens: usage?.prompt_tokens ?? estimateTokens(prompt), outputTokens: usage?.completion_tokens ?? estimateTokens(text) },
      model: request.model,
      provider: this.name,
    };
  }

  /** A JSON-mode answer: `response` is the parsed object (or, from some models, its text). */
  private whole(request: ChatRequest, answer: unknown, onDelta: (text: string) => void): ChatResult {
    const body = answer as { response?: unknown; usage?: { prompt_tokens?: number; completion_tokens?: number } } | null;
    if (!body || body.response === undefined) throw new ProviderError(`Workers AI ${request.model} answered without a response`);
    const text = typeof body.response === "string" ? body.response : JSON.stringify(body.response);
    onDelta(text);
    const prompt = request.messages.map((m) => m.content).join("\n");
    return {
      text,
      usage: { inputTokens: body.usage?.prompt_tokens ?? estimateTokens(prompt), outputTokens: body.usage?.completion_tokens ?? estimateTokens(text) },
      model: request.model,
      provider: this.name,
    };
  }

  async embed(texts: string[]): Promise<number[][]> {
    const out = (await this.ai.run(WORKERS_AI_EMBEDDING_MODEL, { text: texts })) as { data?: number[][] };
    if (!Array.isArray(out.data) || out.data.length !== texts.length) throw new ProviderError("Workers AI returned no embeddings");
    return out.data;
  }
}

/** The `data:` payloads of a server-sent event stream. */
export async function* sseEvents(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of stream) {
    buffer += decoder.decode(chunk, { stream: true });
    for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trimStart())
        .join("\n");
      if (data) yield data;
    }
  }
}
