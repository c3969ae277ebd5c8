import type { Env } from "../../env";
import { LocalAiProvider } from "./local";
import type { AiProvider } from "./types";
import { WorkersAiProvider } from "./workers-ai";

export type { AiProvider, ChatMessage, ChatResult, Usage } from "./types";
export { ProviderError } from "./types";

/** The default chat model when a conversation names none. */
export const DEFAULT_CHAT_MODEL = "@cf/meta/llama-3.1-8b-instruct";

/**
 * The provider `AI_PROVIDER` names: `cloudflare` is Workers AI, `local` the deterministic local
 * model. Chosen by configuration only; an unknown value is an error, never a silent fallback.
 */
export function aiProvider(env: Pick<Env, "AI_PROVIDER" | "AI" | "LOCAL_AI_WORD_DELAY_MS">): AiProvider {
  switch (env.AI_PROVIDER) {
    case "cloudflare":
      return new WorkersAiProvider(env.AI as unknown as ConstructorParameters<typeof WorkersAiProvider>[0]);
    case "local":
      return new LocalAiProvider(Number(env.LOCAL_AI_WORD_DELAY_MS ?? "15"));
    default:
      throw new Error(`AI_PROVIDER must be "local" or "cloudflare", not ${JSON.stringify(env.AI_PROVIDER)}`);
  }
}
