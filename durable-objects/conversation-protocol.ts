import { z } from "zod";

/** Frames larger than this are refused with an error frame; the socket stays open. */
export const MAX_FRAME_BYTES = 64 * 1024;
/** The subprotocol a browser offers beside its `bearer.<token>` one. */
export const SUBPROTOCOL = "tessera.v1";

/** Everything a client may send. */
export const ClientFrame = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("message"),
    content: z.string().min(1).max(32_000),
    /** The client's own id for the message: echoed back, and a retry with the same id is not stored twice. */
    client_id: z.string().min(1).max(100).optional(),
    /** Ask the assistant to answer after this message. */
    reply: z.boolean().optional(),
  }),
  z.object({ type: z.literal("typing") }),
  z.object({ type: z.literal("resume"), after_seq: z.number().int().min(0) }),
  z.object({ type: z.literal("cancel"), reply_id: z.string().min(1).max(100) }),
  z.object({ type: z.literal("ping") }),
]);
export type ClientFrame = z.infer<typeof ClientFrame>;

/** A message as it travels and as history returns it. */
export interface WireMessage {
  id: string;
  seq: number;
  role: "user" | "assistant";
  content: string;
  author_id: string | null;
  status: "complete" | "failed" | "canceled";
  created_at: string;
  /** Set on assistant messages: which model and provider answered, and the tokens used. */
  usage: { model: string; provider: string; tokens_in: number; tokens_out: number } | null;
  error: string | null;
  /** Set on grounded replies: the knowledge chunks the answer cites. */
  citations: Citation[] | null;
  /** The persona version a reply's system prompt began with. */
  persona: { id: string; version: number } | null;
}

export interface Participant {
  user_id: string;
  role: string;
  connections: number;
}

/** Error codes an `error` frame carries. */
export type FrameErrorCode = "INVALID_FRAME" | "FRAME_TOO_LARGE" | "FORBIDDEN" | "NOT_FOUND" | "PROVIDER_ERROR" | "RATE_LIMITED" | "QUOTA_EXCEEDED" | "TENANT_SUSPENDED" | "INTERNAL_ERROR";

/** Close codes a room ends sockets with; clients tell them apart (documented in the README). */
export const CLOSE_CODES = {
  /** The credential expired or was revoked, or its holder's membership ended or changed: reconnect with a fresh token and resume. */
  credential: 4401,
  /** The tenant is suspended: do not reconnect. */
  suspended: 4403,
  /** The conversation was deleted. */
  deleted: 4404,
} as const;

/** At most this many sockets per credential (a member's access tokens count as one) in one room. */
export const MAX_SOCKETS_PER_CREDENTIAL = 5;

/** Whose sockets a change of access closes: one member's, one API key's, or everyone's. */
export interface SocketMatch {
  everyone?: boolean;
  userId?: string;
  apiKeyId?: string;
}

/** A knowledge chunk a reply (or run) was grounded in, as its answer cites it (`[index]` in the text). */
export interface Citation {
  index: number;
  document_id: string;
  document_name: string;
  chunk_id: string;
  knowledge_base_id: string;
  score: number;
}

/** Everything the room sends. */
export type ServerFrame =
  | { type: "ready"; conversation_id: string; last_seq: number; participants: Participant[] }
  | { type: "message"; message: WireMessage; client_id?: string }
  | { type: "delta"; reply_id: string; text: string }
  | { type: "done"; reply_id: string; message: WireMessage; citations?: Citation[] }
  | { type: "presence"; participants: Participant[] }
  | { type: "typing"; user_id: string }
  | { type: "error"; code: FrameErrorCode; message: string; reply_id?: string; retry_after?: number }
  | { type: "pong" };

/** Who is on a socket, set by the Worker after it authenticated the upgrade; kept in the socket's attachment. */
export const SocketIdentity = z.object({
  user_id: z.string(),
  role: z.string(),
  credential: z.enum(["access_token", "api_key"]),
  api_key_id: z.string().optional(),
  can_post: z.boolean(),
  /** Epoch ms after which the socket's credential no longer counts: the room closes it with 4401. */
  expires_at: z.number(),
  /** The tenant's monthly token quota when the socket opened; replies reserve against it. */
  monthly_tokens: z.number().int(),
  /** The limits posting a frame counts under, as an HTTP request would (key, member, tenant); empty when limits are off. */
  rate_limits: z.array(z.object({ policy: z.string(), key: z.string(), limit: z.number().int(), windowSeconds: z.number().int() })),
});
export type SocketIdentity = z.infer<typeof SocketIdentity>;

/** The header the Worker uses to hand the room a socket's identity (the room is not reachable otherwise). */
export const IDENTITY_HEADER = "x-tessera-identity";
