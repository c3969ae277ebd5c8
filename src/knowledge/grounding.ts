import { and, eq, inArray } from "drizzle-orm";
import type { Citation } from "../../durable-objects/conversation-protocol";
import { knowledgeBases } from "../db/tenant/schema";
import type { ChatMessage } from "../providers/ai";
import { estimateTokens } from "../providers/ai/types";
import { type SearchScope, searchBases } from "./search";

export type { Citation };

/** Chunks retrieved per reply or run, and the most prompt tokens they may take. */
export const GROUNDING = { topK: 5, budgetTokens: 2000, maxQueryChars: 2000 } as const;

/**
 * Retrieves the best chunks of the bases for `query` (hybrid search, its embedding metered under
 * the scope's reference) and the instructions that put them in the prompt, within the token budget.
 * Null when the bases are gone or nothing was found.
 */
export async function ground(s: SearchScope, baseIds: string[], query: string): Promise<{ citations: Citation[]; instructions: string } | null> {
  if (!baseIds.length || !query.trim()) return null;
  const bases = await s.db
    .select()
    .from(knowledgeBases)
    .where(and(eq(knowledgeBases.tenantId, s.tenantId), inArray(knowledgeBases.id, baseIds)));
  if (!bases.length) return null;
  const { hits } = await searchBases(s, bases, { query: query.slice(-GROUNDING.maxQueryChars), top_k: GROUNDING.topK, mode: "hybrid" });
  const citations: Citation[] = [];
  const excerpts: string[] = [];
  let budget = GROUNDING.budgetTokens;
  for (const hit of hits) {
    const excerpt = `[${citations.length + 1}] ${hit.document.name}\n${hit.text}`;
    const tokens = estimateTokens(excerpt);
    if (tokens > budget) continue;
    budget -= tokens;
    excerpts.push(excerpt);
    citations.push({ index: citations.length + 1, document_id: hit.document.id, document_name: hit.document.name, chunk_id: hit.chunkId, knowledge_base_id: hit.knowledgeBaseId, score: hit.score });
  }
  if (!citations.length) return null;
  const instructions = `Answer using these excerpts from the knowledge base where they are relevant, and cite them by number, like [1]. If they do not answer the question, say so rather than guessing.\n\n${excerpts.join("\n\n")}`;
  return { citations, instructions };
}

/** The messages with the knowledge instructions after the system prompt (before the conversation). */
export function groundedMessages(messages: ChatMessage[], instructions: string): ChatMessage[] {
  const leading = messages.findIndex((m) => m.role !== "system");
  const at = leading === -1 ? messages.length : leading;
  return [...messages.slice(0, at), { role: "system", content: instructions }, ...messages.slice(at)];
}
