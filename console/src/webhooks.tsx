import { useState } from "preact/hooks";
import { api } from "./api";
import { ListState, submit, useAction, useList, useOne, when } from "./data";
import { Choices, Field, FormError, Submit } from "./form";
import { Link } from "./nav";

interface Endpoint {
  id: string;
  url: string;
  description: string | null;
  event_types: string[] | null;
  disabled: boolean;
  disabled_reason: string | null;
  last_success_at: string | null;
  failing_since: string | null;
  created_at: string;
}
interface Message {
  id: string;
  endpoint_id: string;
  event_type: string;
  status: string;
  attempts: number;
  next_attempt_at: string | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: string;
}
interface Attempt {
  id: string;
  attempt: number;
  status_code: number | null;
  duration_ms: number;
  response_body: string | null;
  error: string | null;
  created_at: string;
}

/** The tenant's webhook endpoints, and a form for a new one (its signing secret shown once). */
export function WebhooksPage({ canWrite }: { canWrite: boolean }) {
  const list = useList<Endpoint>("/v1/webhooks/endpoints?limit=100");
  const types = useList<{ type: string; description: string }>("/v1/webhooks/event-types");
  const [url, setUrl] = useState("");
  const [chosen, setChosen] = useState<string[]>([]);
  const [secret, setSecret] = useState<string | null>(null);
  const action = useAction();
  const create = submit(() =>
    action.run(async () => {
      const made = await api<Endpoint & { secret: string }>("/v1/webhooks/endpoints", { body: { url, ...(chosen.length > 0 && { event_types: chosen }) } });
      setSecret(made.secret);
      list.setItems([made, ...(list.items ?? [])]);
      setUrl("");
      setChosen([]);
    }),
  );
  return (
    <>
      <h1>Webhooks</h1>
      {canWrite && (
        <section class="panel" aria-labelledby="new-endpoint-heading">
          <h2 id="new-endpoint-heading">New endpoint</h2>
          <form onSubmit={create} noValidate aria-label="New endpoint">
            <Field id="endpoint-url" label="Endpoint URL" name="url" type="url" value={url} onInput={setUrl} failure={action.failure} required hint="An https address that answers 2xx within 15 seconds." />
            <details>
              <summary>Event types ({chosen.length === 0 ? "all" : chosen.length})</summary>
              <Choices legend="Send only these (none chosen: every event)" options={(types.items ?? []).map((t) => [t.type, t.type] as const)} chosen={chosen} onChange={setChosen} wide />
            </details>
            <FormError failure={action.failure} />
            <Submit busy={action.busy}>Add endpoint</Submit>
          </form>
          {secret && (
            <div class="secret" role="status">
              <p>The endpoint's signing secret, shown only now (verify each delivery's `webhook-signature` with it):</p>
              <input readOnly aria-label="Signing secret" value={secret} onFocus={(e) => (e.target as HTMLInputElement).select()} />
            </div>
          )}
        </section>
      )}
      <ListState items={list.items} failure={list.failure} empty="No endpoints yet: add one to be told about events as they happen." />
      <ul class="cards" aria-label="Endpoints">
        {list.items?.map((e) => (
          <li key={e.id}>
            <Link href={`/webhooks/${e.id}`}>
              <strong>{e.url}</strong>
            </Link>
            <small>{e.event_types ? e.event_types.join(", ") : "every event"}</small>
            <small>{e.disabled ? `Disabled${e.disabled_reason ? `: ${e.disabled_reason}` : ""}` : e.failing_since ? `Failing since ${when(e.failing_since)}` : `Last success ${when(e.last_success_at)}`}</small>
          </li>
        ))}
      </ul>
    </>
  );
}

/** One endpoint: its messages with their attempts, replay, a test event, and enable/disable. */
export function EndpointPage({ endpointId, canWrite }: { endpointId: string; canWrite: boolean }) {
  const endpoint = useOne<Endpoint>(`/v1/webhooks/endpoints/${endpointId}`);
  const [status, setStatus] = useState("");
  const messages = useList<Message>(`/v1/webhooks/messages?endpoint_id=${endpointId}&limit=50${status && `&status=${status}`}`);
  const [open, setOpen] = useState<string | null>(null);
  const [secret, setSecret] = useState<string | null>(null);
  const action = useAction();
  const e = endpoint.value;
  if (endpoint.failure) return <p role="alert" class="error">{endpoint.failure.message}</p>;
  if (!e) return <p class="loading">Loading endpoint…</p>;
  const post = (path: string, body?: unknown) =>
    action.run(async () => {
      const answer = await api<Endpoint & { secret?: string }>(`/v1/webhooks/endpoints/${endpointId}/${path}`, { body: body ?? {} });
      if (answer.secret) setSecret(answer.secret);
      await Promise.all([endpoint.reload(), messages.reload()]);
    });
  const replay = (m: Message) =>
    action.run(async () => {
      await api(`/v1/webhooks/messages/${m.id}/replay`, { body: {} });
      await messages.reload();
    });
  return (
    <>
      <p class="crumbs">
        <Link href="/webhooks">Webhooks</Link> / endpoint
      </p>
      <h1 class="wrap">{e.url}</h1>
      <p class="meta">
        {e.disabled ? `Disabled${e.disabled_reason ? ` (${e.disabled_reason})` : ""}` : "Enabled"} · {e.event_types ? e.event_types.join(", ") : "every event"} · last success {when(e.last_success_at)}
        {e.failing_since && ` · failing since ${when(e.failing_since)}`}
      </p>
      {canWrite && (
        <div class="actions">
          <button type="button" onClick={() => post("test")} disabled={action.busy}>
            Send a test event
          </button>
          <button type="button" class="secondary" onClick={() => post(e.disabled ? "enable" : "disable")} disabled={action.busy}>
            {e.disabled ? "Enable" : "Disable"}
          </button>
          <button type="button" class="secondary" onClick={() => post("rotate-secret")} disabled={action.busy}>
            Rotate secret
          </button>
        </div>
      )}
      <FormError failure={action.failure} />
      {secret && (
        <div class="secret" role="status">
          <p>The new signing secret, shown only now (the previous one keeps signing for 24 hours):</p>
          <input readOnly aria-label="Signing secret" value={secret} onFocus={(ev) => (ev.target as HTMLInputElement).select()} />
        </div>
      )}
      <section aria-labelledby="messages-heading" class="panel">
        <h2 id="messages-heading">Deliveries</h2>
        <div class="field inline-field">
          <label for="message-status">Status</label>
          <select id="message-status" value={status} onChange={(ev) => setStatus((ev.target as HTMLSelectElement).value)}>
            <option value="">any</option>
            {["pending", "delivering", "succeeded", "failed"].map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
          <button type="button" class="secondary" onClick={() => messages.reload()}>
            Refresh
          </button>
        </div>
        <ListState items={messages.items} failure={messages.failure} empty="Nothing sent to this endpoint yet." />
        <ul class="rows" aria-label="Deliveries">
          {messages.items?.map((m) => (
            <li key={m.id} class="delivery">
              <span class={`status ${m.status}`}>{m.status}</span>
              <code>{m.event_type}</code>
              <small class="meta">
                {when(m.created_at)} · {m.attempts} attempt{m.attempts === 1 ? "" : "s"}
                {m.last_status_code !== null && ` · HTTP ${m.last_status_code}`}
                {m.next_attempt_at && m.status !== "succeeded" && ` · next ${when(m.next_attempt_at)}`}
              </small>
              <button type="button" class="link" aria-expanded={open === m.id} onClick={() => setOpen(open === m.id ? null : m.id)}>
                Attempts
              </button>
              {canWrite && (
                <button type="button" class="link" onClick={() => replay(m)} disabled={action.busy} aria-label={`Replay ${m.event_type} ${m.id}`}>
                  Replay
                </button>
              )}
              {open === m.id && <Attempts messageId={m.id} />}
            </li>
          ))}
        </ul>
      </section>
    </>
  );
}

function Attempts({ messageId }: { messageId: string }) {
  const list = useList<Attempt>(`/v1/webhooks/messages/${messageId}/attempts?limit=50`);
  return (
    <div class="attempts">
      <ListState items={list.items} failure={list.failure} empty="Not attempted yet." />
      <ol aria-label="Attempts">
        {list.items?.map((a) => (
          <li key={a.id}>
            #{a.attempt} {when(a.created_at)} — {a.status_code !== null ? `HTTP ${a.status_code}` : "no answer"} in {a.duration_ms} ms
            {a.error && <span class="error"> · {a.error}</span>}
            {a.response_body && <pre>{a.response_body}</pre>}
          </li>
        ))}
      </ol>
    </div>
  );
}
