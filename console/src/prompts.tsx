import { useEffect, useState } from "preact/hooks";
import { api } from "./api";
import { ListState, submit, useAction, useList, useOne, when } from "./data";
import { Field, FormError, Submit } from "./form";
import { Link, navigate } from "./nav";

interface Version {
  version: number;
  template: string;
  variables: string[];
  weight: number;
  note: string | null;
  created_at: string;
}
interface Prompt {
  key: string;
  latest_version: number;
  versions: Version[];
  updated_at: string;
}
interface VersionStats {
  version: number;
  weight: number;
  runs: number;
  succeeded: number;
  failed: number;
  failure_rate: number | null;
  avg_tokens_per_run: number | null;
  avg_latency_ms: number | null;
}

/** The tenant's prompts, and a form for a new one (its first version). */
export function PromptsPage({ canWrite }: { canWrite: boolean }) {
  const list = useList<{ key: string; latest_version: number; updated_at: string }>("/v1/prompts?limit=100");
  const [key, setKey] = useState("");
  const [template, setTemplate] = useState("");
  const action = useAction();
  const create = submit(() =>
    action.run(async () => {
      await api(`/v1/prompts/${encodeURIComponent(key)}/versions`, { body: { template } });
      navigate(`/prompts/${encodeURIComponent(key)}`);
    }),
  );
  return (
    <>
      <h1>Prompts</h1>
      <p class="aside">
        An agent that names a prompt key writes its system prompt from the prompt's versions, chosen by weight: two versions with weights are an A/B test, measured run by run.
      </p>
      {canWrite && (
        <section class="panel" aria-labelledby="new-prompt-heading">
          <h2 id="new-prompt-heading">New prompt</h2>
          <form onSubmit={create} noValidate aria-label="New prompt">
            <Field id="prompt-key" label="Key" name="key" value={key} onInput={setKey} failure={action.failure} required hint="Lowercase words, e.g. support.greeting" />
            <Field id="prompt-template" label="Template" name="template" multiline value={template} onInput={setTemplate} failure={action.failure} required hint="{{variable}} places the run's input." />
            <FormError failure={action.failure} />
            <Submit busy={action.busy}>Create prompt</Submit>
          </form>
        </section>
      )}
      <ListState items={list.items} failure={list.failure} empty="No prompts yet." />
      <ul class="cards" aria-label="Prompts">
        {list.items?.map((p) => (
          <li key={p.key}>
            <Link href={`/prompts/${encodeURIComponent(p.key)}`}>
              <strong>{p.key}</strong>
            </Link>
            <small>
              {p.latest_version} version{p.latest_version === 1 ? "" : "s"} · {when(p.updated_at)}
            </small>
          </li>
        ))}
      </ul>
    </>
  );
}

/** One prompt: its versions, their weights (the A/B split), and each version's runs, failures, tokens and latency. */
export function PromptPage({ promptKey, canWrite }: { promptKey: string; canWrite: boolean }) {
  const path = `/v1/prompts/${encodeURIComponent(promptKey)}`;
  const prompt = useOne<Prompt>(path);
  const stats = useOne<{ versions: VersionStats[] }>(`${path}/stats`);
  const [weights, setWeights] = useState<Record<number, string>>({});
  const [template, setTemplate] = useState("");
  const [note, setNote] = useState("");
  const action = useAction();
  const p = prompt.value;
  useEffect(() => {
    if (p) setWeights(Object.fromEntries(p.versions.map((v) => [v.version, String(v.weight)])));
  }, [p]);
  if (prompt.failure) return <p role="alert" class="error">{prompt.failure.message}</p>;
  if (!p) return <p class="loading">Loading prompt…</p>;
  const byVersion = new Map((stats.value?.versions ?? []).map((s) => [s.version, s]));
  const total = Object.values(weights).reduce((sum, w) => sum + (Number(w) || 0), 0);
  const saveWeights = submit(() =>
    action.run(async () => {
      prompt.setValue(await api<Prompt>(`${path}/weights`, { method: "PUT", body: { weights: Object.fromEntries(Object.entries(weights).map(([v, w]) => [v, Number(w)])) } }));
      await stats.reload();
    }),
  );
  const addVersion = submit(() =>
    action.run(async () => {
      await api(`${path}/versions`, { body: { template, ...(note && { note }) } });
      setTemplate("");
      setNote("");
      await Promise.all([prompt.reload(), stats.reload()]);
    }),
  );
  const pct = (n: number | null) => (n === null ? "—" : `${(n * 100).toFixed(1)}%`);
  return (
    <>
      <p class="crumbs">
        <Link href="/prompts">Prompts</Link> / {p.key}
      </p>
      <h1>{p.key}</h1>
      <form onSubmit={saveWeights} noValidate aria-label="Versions and weights">
        <div class="scroll">
          <table aria-label="Versions">
            <thead>
              <tr>
                <th scope="col">Version</th>
                <th scope="col">Weight</th>
                <th scope="col">Share</th>
                <th scope="col">Runs</th>
                <th scope="col">Failure rate</th>
                <th scope="col">Tokens / run</th>
                <th scope="col">Latency</th>
                <th scope="col">Template</th>
              </tr>
            </thead>
            <tbody>
              {p.versions.map((v) => {
                const s = byVersion.get(v.version);
                const w = Number(weights[v.version]) || 0;
                return (
                  <tr key={v.version}>
                    <th scope="row">v{v.version}</th>
                    <td>
                      {canWrite ? (
                        <input class="narrow-input" type="number" min={0} max={100} aria-label={`Weight of version ${v.version}`} value={weights[v.version] ?? ""} onInput={(e) => setWeights({ ...weights, [v.version]: (e.target as HTMLInputElement).value })} />
                      ) : (
                        v.weight
                      )}
                    </td>
                    <td>
                      <meter min={0} max={1} value={total ? w / total : 0} aria-label={`Share of version ${v.version}`} /> {total ? pct(w / total) : "—"}
                    </td>
                    <td data-testid={`runs-v${v.version}`}>{s?.runs ? `${s.runs} (${s.succeeded} ok)` : "0"}</td>
                    <td>{pct(s?.failure_rate ?? null)}</td>
                    <td>{s?.avg_tokens_per_run?.toFixed(0) ?? "—"}</td>
                    <td>{s?.avg_latency_ms ? `${s.avg_latency_ms.toFixed(0)} ms` : "—"}</td>
                    <td>
                      <pre class="template">{v.template}</pre>
                      {v.note && <small class="meta">{v.note}</small>}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
        <FormError failure={action.failure} />
        {canWrite && <Submit busy={action.busy}>Save weights</Submit>}
      </form>
      {canWrite && (
        <section class="panel" aria-labelledby="new-version-heading">
          <h2 id="new-version-heading">New version</h2>
          <form onSubmit={addVersion} noValidate aria-label="New version">
            <Field id="version-template" label="Template" name="template" multiline value={template} onInput={setTemplate} failure={action.failure} required />
            <Field id="version-note" label="Note" name="note" value={note} onInput={setNote} failure={action.failure} hint="What changed, for whoever reads the stats later." />
            <Submit busy={action.busy}>Add version {p.latest_version + 1}</Submit>
          </form>
        </section>
      )}
    </>
  );
}
