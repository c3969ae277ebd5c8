import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { aiProvider } from "../../src/providers/ai";
import { EMBEDDING_DIMENSIONS, LOCAL_FAILURE_TRIGGER, LOCAL_MALFORMED_TRIGGER, LocalAiProvider } from "../../src/providers/ai/local";
import { ProviderError } from "../../src/providers/ai/types";
import { type AiBinding, WorkersAiProvider } from "../../src/providers/ai/workers-ai";

const prompt = (content: string) => ({ model: "m", messages: [{ role: "system" as const, content: "be brief" }, { role: "user" as const, content }] });

describe("the local model", () => {
  it("streams a deterministic reply word by word, with usage", async () => {
    const model = new LocalAiProvider(0);
    const deltas: string[] = [];
    const a = await model.chat(prompt("hello there"), (d) => deltas.push(d));
    const b = await model.chat(prompt("hello there"), () => {});
    expect(deltas.length).toBeGreaterThan(5);
    expect(deltas.join("")).toBe(a.text);
    expect(a.text).toBe(b.text);
    expect(a.text).toContain("hello there");
    expect(a).toMatchObject({ provider: "local", model: "m", usage: { inputTokens: expect.any(Number), outputTokens: expect.any(Number) } });
    expect(a.usage.outputTokens).toBeGreaterThan(0);
  });

  it("stops when aborted and fails on the trigger phrase", async () => {
    const model = new LocalAiProvider(5);
    const controller = new AbortController();
    const deltas: string[] = [];
    const result = await model.chat({ ...prompt("x"), signal: controller.signal }, (d) => {
      deltas.push(d);
      if (deltas.length === 2) controller.abort();
    });
    expect(deltas).toHaveLength(2);
    expect(result.text).toBe(deltas.join(""));
    await expect(model.chat(prompt(`please ${LOCAL_FAILURE_TRIGGER}`), () => {})).rejects.toBeInstanceOf(ProviderError);
  });

  it("answers a request for JSON with a streamed value of the schema, or malformed text when told to", async () => {
    const model = new LocalAiProvider(0);
    const schema = {
      type: "object",
      properties: { items: { type: "array", minItems: 3, items: { type: "object", properties: { kind: { enum: ["a", "b"] }, name: { type: "string", maxLength: 12 }, n: { type: "integer", minimum: 2 } } } } },
    };
    const deltas: string[] = [];
    const answer = await model.chat({ ...prompt("Plan the week"), responseFormat: { type: "json_schema", json_schema: schema } }, (d) => deltas.push(d));
    expect(deltas.length).toBeGreaterThan(1);
    expect(JSON.parse(answer.text)).toEqual({
      items: [
        { kind: "a", name: "name 1: Plan", n: 2 },
        { kind: "b", name: "name 2: Plan", n: 2 },
        { kind: "a", name: "name 3: Plan", n: 2 },
      ],
    });
    const broken = await model.chat({ ...prompt(`Plan ${LOCAL_MALFORMED_TRIGGER}`), responseFormat: { type: "json_schema", json_schema: schema } }, () => {});
    expect(() => JSON.parse(broken.text)).toThrow();
  });

  it("embeds deterministically into unit vectors", async () => {
    const model = new LocalAiProvider(0);
    const [a, b, c, empty] = await model.embed(["one", "one", "two", "  "]);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a).toHaveLength(EMBEDDING_DIMENSIONS);
    for (const v of [a, c, empty]) expect(Math.hypot(...v!)).toBeCloseTo(1, 6);
  });

  it("embeds lexically: texts sharing words are nearer than texts that do not", async () => {
    const model = new LocalAiProvider(0);
    const [guide, paraphrase, unrelated] = await model.embed(["Our brand voice guide for social posts", "the voice of our brand in posts", "Quarterly revenue figures by region"]);
    const cos = (x: number[], y: number[]) => x.reduce((s, v, i) => s + v * y[i]!, 0);
    expect(cos(guide!, paraphrase!)).toBeGreaterThan(0.4);
    expect(cos(guide!, paraphrase!)).toBeGreaterThan(cos(guide!, unrelated!) + 0.3);
  });
});

/** A stand-in for the AI binding (Workers AI has no local simulation) that answers as Workers AI does. */
function binding(events: string[], chunkSize = 7): AiBinding & { calls: unknown[] } {
  const calls: unknown[] = [];
  return {
    calls,
    async run(model, inputs) {
      calls.push({ model, inputs });
      if ("text" in inputs) return { data: (inputs.text as string[]).map(() => [0.1, 0.2]) };
      const body = new TextEncoder().encode(events.map((e) => `data: ${e}\n\n`).join(""));
      return new ReadableStream<Uint8Array>({
        start(controller) {
          // Split across arbitrary byte boundaries, as a network would.
          for (let i = 0; i < body.length; i += chunkSize) controller.enqueue(body.slice(i, i + chunkSize));
          controller.close();
        },
      });
    },
  };
}

describe("Workers AI", () => {
  it("reads the streamed events into deltas, text and the reported usage", async () => {
    const ai = binding([JSON.stringify({ response: "Hel" }), JSON.stringify({ response: "lo" }), JSON.stringify({ response: "", usage: { prompt_tokens: 11, completion_tokens: 2 } }), "[DONE]"]);
    const deltas: string[] = [];
    const result = await new WorkersAiProvider(ai).chat(prompt("hi"), (d) => deltas.push(d));
    expect(deltas).toEqual(["Hel", "lo"]);
    expect(result).toEqual({ text: "Hello", usage: { inputTokens: 11, outputTokens: 2 }, model: "m", provider: "workers-ai" });
    expect(ai.calls[0]).toMatchObject({ model: "m", inputs: { stream: true, messages: prompt("hi").messages } });
  });

  it("turns a failed call or an unreadable stream into a ProviderError", async () => {
    const failing: AiBinding = { run: async () => Promise.reject(new Error("503 upstream")) };
    await expect(new WorkersAiProvider(failing).chat(prompt("hi"), () => {})).rejects.toBeInstanceOf(ProviderError);
    await expect(new WorkersAiProvider(binding(["not json"])).chat(prompt("hi"), () => {})).rejects.toBeInstanceOf(ProviderError);
    const notStreaming: AiBinding = { run: async () => ({ response: "whole" }) };
    await expect(new WorkersAiProvider(notStreaming).chat(prompt("hi"), () => {})).rejects.toBeInstanceOf(ProviderError);
  });

  it("tells failures worth retrying (capacity, upstream errors) from requests it will never accept", async () => {
    const failingWith = (message: string): AiBinding => ({ run: async () => Promise.reject(new Error(message)) });
    const errorOf = async (message: string) => (await new WorkersAiProvider(failingWith(message)).chat(prompt("hi"), () => {}).catch((e: unknown) => e)) as ProviderError;
    expect((await errorOf("3040: Capacity temporarily exceeded, please try again.")).retryable).toBe(true);
    expect((await errorOf("3043: Internal server error")).retryable).toBe(true);
    expect((await errorOf("upstream connect error")).retryable).toBe(true);
    expect((await errorOf("5007: No such model @cf/nope")).retryable).toBe(false);
    expect((await errorOf("8001: Invalid input")).retryable).toBe(false);
  });

  it("passes an agent's temperature and tools as Workers AI function tools", async () => {
    const ai = binding([JSON.stringify({ response: "ok" }), "[DONE]"]);
    const tool = { name: "lookup", description: "Looks up", parameters: { type: "object", properties: { q: { type: "string" } } } };
    await new WorkersAiProvider(ai).chat({ ...prompt("hi"), temperature: 0.2, tools: [tool] }, () => {});
    expect(ai.calls[0]).toMatchObject({ inputs: { temperature: 0.2, tools: [{ type: "function", function: tool }] } });
  });

  it("asks for JSON mode whole (it does not stream) and reads the parsed response back as text", async () => {
    const calls: Record<string, unknown>[] = [];
    const ai: AiBinding = {
      async run(_model, inputs) {
        calls.push(inputs);
        return { response: { ideas: [{ title: "Hi" }] }, usage: { prompt_tokens: 40, completion_tokens: 9 } };
      },
    };
    const format = { type: "json_schema" as const, json_schema: { type: "object" } };
    const deltas: string[] = [];
    const result = await new WorkersAiProvider(ai).chat({ ...prompt("ideas"), responseFormat: format }, (d) => deltas.push(d));
    expect(calls[0]).toMatchObject({ stream: false, response_format: format });
    expect(result).toEqual({ text: '{"ideas":[{"title":"Hi"}]}', usage: { inputTokens: 40, outputTokens: 9 }, model: "m", provider: "workers-ai" });
    expect(deltas).toEqual([result.text]);
  });

  it("embeds through the embedding model", async () => {
    const ai = binding([]);
    expect(await new WorkersAiProvider(ai).embed(["a", "b"])).toEqual([[0.1, 0.2], [0.1, 0.2]]);
    expect(ai.calls[0]).toMatchObject({ model: "@cf/baai/bge-base-en-v1.5" });
  });
});

describe("choosing a provider", () => {
  it("follows AI_PROVIDER and refuses anything else", () => {
    const ai = binding([]) as unknown as Ai;
    expect(aiProvider({ ...env, AI_PROVIDER: "local", AI: ai }).name).toBe("local");
    expect(aiProvider({ ...env, AI_PROVIDER: "cloudflare", AI: ai }).name).toBe("workers-ai");
    expect(() => aiProvider({ ...env, AI_PROVIDER: "openai", AI: ai })).toThrow(/AI_PROVIDER/);
  });
});
