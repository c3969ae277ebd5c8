import type { Env } from "../../env";
import { loadConfig } from "../../env";

/** A revision's variant for one channel, as a publisher sends it. */
export interface Publication {
  /** Post, revision and channel: the same publication asked twice is posted once. */
  idempotencyKey: string;
  text: string;
  media: string[];
  link: string | null;
}

/** A connected account as a publisher needs it: which channel, and its (decrypted) credentials. */
export interface Account {
  id: string;
  channel: string;
  credentials: Record<string, unknown>;
}

/** What publishing answered: the channel's post, or why not and whether trying again may help. */
export type PublishResult = { ok: true; externalId: string; url: string } | { ok: false; retryable: boolean; error: string; retryAfterSeconds?: number };

/** A post's counts on its channel so far (cumulative); conversions when the network reports them. */
export interface Metrics {
  impressions: number;
  clicks: number;
  reactions: number;
  shares: number;
  conversions: number | null;
}

/** Where posts go. Chosen by `PUBLISHER`; each answer names its publisher. */
export interface Publisher {
  readonly name: string;
  publish(account: Account, publication: Publication): Promise<PublishResult>;
  /** The counts of a post it published; null when the network no longer knows it. */
  metrics(account: Account, externalId: string): Promise<Metrics | null>;
}

/** The sandbox: a PublisherSandbox Durable Object per account stands in for the network. */
class LocalPublisher implements Publisher {
  readonly name = "local";
  constructor(private readonly env: Env) {}

  async publish(account: Account, p: Publication): Promise<PublishResult> {
    const sandbox = this.env.PUBLISHER_SANDBOX.get(this.env.PUBLISHER_SANDBOX.idFromName(account.id));
    const answer = await sandbox.publish(account.channel, p);
    if (answer.ok) return { ok: true, externalId: answer.id, url: answer.url };
    return { ok: false, retryable: answer.status !== 400, error: `${answer.status} ${answer.error}`, ...(answer.retryAfterSeconds !== undefined && { retryAfterSeconds: answer.retryAfterSeconds }) };
  }

  async metrics(account: Account, externalId: string): Promise<Metrics | null> {
    return this.env.PUBLISHER_SANDBOX.get(this.env.PUBLISHER_SANDBOX.idFromName(account.id)).metrics(externalId);
  }
}

/** The configured publisher. */
export function publisher(env: Env): Publisher {
  const chosen = loadConfig(env).PUBLISHER;
  switch (chosen) {
    case "local":
      return new LocalPublisher(env);
  }
}
