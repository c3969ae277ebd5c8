/** One turn of a chat prompt. */
export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** A function the model may call, with a JSON Schema of its arguments. */
export interface ToolDeclaration {
  name: string;
  description: string;
  parameters: Record<string, unknown>;
}

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  maxTokens?: number;
  temperature?: number;
  tools?: ToolDeclaration[];
  /** Ask for JSON matching this JSON Schema (Workers AI's JSON mode); the caller still validates what comes back. */
  responseFormat?: { type: "json_schema"; json_schema: Record<string, unknown> };
  signal?: AbortSignal;
}

/** Token counts of one model call, as the provider reports them (or estimates, for the local model). */
export interface Usage {
  inputTokens: number;
  outputTokens: number;
}

export interface ChatResult {
  text: string;
  usage: Usage;
  model: string;
  provider: ProviderName;
}

export type ProviderName = "local" | "workers-ai";

/** A model provider: streaming chat and embeddings. */
export interface AiProvider {
  readonly name: ProviderName;
  /** Streams a reply, calling `onDelta` with each piece of text; resolves with the whole reply and its usage. */
  chat(request: ChatRequest, onDelta: (text: string) => void): Promise<ChatResult>;
  /** One embedding vector per text. */
  embed(texts: string[]): Promise<number[][]>;
}

/**
 * A provider failed: the caller records a failed reply, never a stuck one. `retryable` failures
 * (5xx, capacity, time-outs, a broken stream) may succeed if tried again; the others (a 4xx: an
 * unknown model, input the model refuses) will not.
 */
export class ProviderError extends Error {
  override readonly name = "ProviderError";
  readonly retryable: boolean;

  constructor(message: string, opts: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, { cause: opts.cause });
    this.retryable = opts.retryable ?? true;
  }
}

/** Rough token count (four characters a token) used for prompt budgets and the local model's usage. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}
