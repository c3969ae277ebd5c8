import { DurableObject } from "cloudflare:workers";

/**
 * One per (tenant, conversation): the live message log in its own SQLite, hibernating
 * WebSockets and in-flight AI streams. Bound now so the binding and its SQLite migration
 * exist from the first deploy; its protocol and behaviour arrive with issue 3.
 */
export class ConversationRoom extends DurableObject {}
