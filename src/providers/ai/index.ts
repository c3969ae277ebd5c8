import { type Env, loadConfig } from "../../env";
import { LocalAiProvider } from "./local";
import type { AiProvider } from "./types";
import { WorkersAiProvider } from "./workers-ai";

export type { AiProvider, ChatMessage, ChatResult, Usage } from "./types";
export { ProviderError } from "./types";

/** The default chat model when a conversation names none. */
export const DEFAULT_CHAT_MODEL = "@cf/meta/llama-3.1-8b-instruct";

/**
 * The provider `AI_PROVIDER` names: `cloudflare` is Workers AI, `local` the deterministic local
 * model. Chosen by configuration only (checked by `loadConfig`): an unknown value fails the deploy's
 * first request, never falls back silently.
 */
export function aiProvider(env: Env): AiProvider {
  const config = loadConfig(env);
  switch (config.AI_PROVIDER) {
    case "cloudflare":
      return new WorkersAiProvider(env.AI as unknown as ConstructorParameters<typeof WorkersAiProvider>[0]);
    case "local":
      return new LocalAiProvider(config.LOCAL_AI_WORD_DELAY_MS);
  }
}
