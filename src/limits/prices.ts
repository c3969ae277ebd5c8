/**
 * Model prices in millionths of a US dollar per million tokens, input and output: approximately
 * Workers AI's per-token list prices for these models (check them against the current price list
 * when adding a model). The local model is free. A model missing here is charged at DEFAULT_PRICE,
 * so nothing runs for free by omission.
 */
export const PRICES: Record<string, { inputPerMillion: number; outputPerMillion: number }> = {
  "@cf/meta/llama-3.1-8b-instruct": { inputPerMillion: 282_000, outputPerMillion: 827_000 },
  "@cf/meta/llama-3.1-8b-instruct-fast": { inputPerMillion: 45_000, outputPerMillion: 384_000 },
  "@cf/meta/llama-3.3-70b-instruct-fp8-fast": { inputPerMillion: 293_000, outputPerMillion: 2_253_000 },
  "@cf/baai/bge-base-en-v1.5": { inputPerMillion: 67_000, outputPerMillion: 0 },
};

/** Price of a model with no entry above: the dearest chat price, erring against giving calls away. */
export const DEFAULT_PRICE = { inputPerMillion: 293_000, outputPerMillion: 2_253_000 };

/** The cost of one call in micro-dollars; the local provider costs nothing. */
export function costMicros(provider: string, model: string, tokensIn: number, tokensOut: number): number {
  if (provider === "local") return 0;
  const price = PRICES[model] ?? DEFAULT_PRICE;
  return Math.ceil((tokensIn * price.inputPerMillion + tokensOut * price.outputPerMillion) / 1_000_000);
}
