import { useEffect, useState } from "preact/hooks";
import { api, ApiProblem, authorized, answer, upload } from "./api";
import { Choices, Field, SelectField, type Failure, FormError, failureOf, Submit } from "./form";
import { Link, navigate } from "./nav";
import { ProjectHeader } from "./content";
import { ListState, useCan, useList } from "./data";

interface Named {
  id: string;
  name?: string;
  title?: string | null;
  status?: string;
  created_at: string;
}

/** One project: its conversations, agents and runs, and artifacts. */
export function ProjectPage({ projectId }: { projectId: string }) {
  const can = useCan();
  return (
    <>
      <ProjectHeader projectId={projectId} here="overview" />
      <div class="columns">
        {can("conversations:read") && <Conversations projectId={projectId} />}
        {can("agents:read") && can("runs:read") && <Runs projectId={projectId} canWrite={can("runs:write")} />}
        {can("artifacts:read") && <Artifacts projectId={projectId} canWrite={can("artifacts:write")} />}
      </div>
      {can("posts:read") && !can("conversations:read") && (
        <p>
          <Link href={`/projects/${projectId}/content`}>Review this project's posts</Link>.
        </p>
      )}
    </>
  );
}

function Conversations({ projectId }: { projectId: string }) {
  const list = useList<Named>(`/v1/conversations?project_id=${projectId}&limit=50`);
  const [title, setTitle] = useState("");
  const [failure, setFailure] = useState<Failure | null>(null);
  const [busy, setBusy] = useState(false);
  const create = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      const made = await api<Named>("/v1/conversations", { body: { project_id: projectId, ...(title && { title }) } });
      navigate(`/projects/${projectId}/conversations/${made.id}`);
    } catch (err) {
      setFailure(failureOf(err));
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="conversations-heading">
      <h2 id="conversations-heading">Conversations</h2>
      <form onSubmit={create} noValidate aria-label="New conversation">
        <Field label="Conversation title" name="title" value={title} onInput={setTitle} failure={failure} />
        <FormError failure={failure} />
        <Submit busy={busy}>Start a conversation</Submit>
      </form>
      <ListState items={list.items} failure={list.failure} empty="No conversations yet." />
      <ul class="rows" aria-label="Conversations">
        {list.items?.map((c) => (
          <li key={c.id}>
            <Link href={`/projects/${projectId}/conversations/${c.id}`}>{c.title || "Untitled conversation"}</Link>
          </li>
        ))}
      </ul>
    </section>
  );
}

function Runs({ projectId, canWrite }: { projectId: string; canWrite: boolean }) {
  const agents = useList<Named>(`/v1/agents?project_id=${projectId}&limit=100`);
  const runs = useList<Named & { agent_id: string }>(`/v1/runs?project_id=${projectId}&limit=20`);
  const [agentName, setAgentName] = useState("");
  const prompts = useList<{ key: string }>("/v1/prompts?limit=100");
  const bases = useList<{ id: string; name: string }>(`/v1/knowledge-bases?project_id=${projectId}&limit=100`);
  const [promptKey, setPromptKey] = useState("");
  const [kbIds, setKbIds] = useState<string[]>([]);
  const [text, setText] = useState("");
  const [agentId, setAgentId] = useState("");
  const [failure, setFailure] = useState<Failure | null>(null);
  const [busy, setBusy] = useState(false);
  const chosen = agentId || agents.items?.[0]?.id || "";
  const addAgent = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setFailure(null);
    try {
      const made = await api<Named>("/v1/agents", { body: { project_id: projectId, name: agentName, ...(promptKey ? { prompt_key: promptKey } : { system_prompt: "You write clear, friendly copy." }), knowledge_base_ids: kbIds } });
      agents.setItems([made, ...(agents.items ?? [])]);
      setAgentId(made.id);
      setAgentName("");
    } catch (err) {
      setFailure(failureOf(err));
    } finally {
      setBusy(false);
    }
  };
  const start = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setFailure(null);
    try {
      const run = await api<Named>("/v1/runs", { body: { agent_id: chosen, project_id: projectId, input: { text } } });
      navigate(`/runs/${run.id}`);
    } catch (err) {
      setFailure(failureOf(err));
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="runs-heading">
      <h2 id="runs-heading">Agents and runs</h2>
      {canWrite && agents.items?.length ? (
        <form onSubmit={start} noValidate aria-label="Start a run">
          <SelectField id="run-agent" label="Agent" value={chosen} onChange={setAgentId} options={agents.items.map((a) => [a.id, a.name ?? a.id] as const)} />
          <Field label="What should it write?" name="input.text" value={text} onInput={setText} failure={failure} required />
          <FormError failure={failure} />
          <Submit busy={busy}>Start run</Submit>
        </form>
      ) : null}
      {canWrite && (
        <form onSubmit={addAgent} noValidate aria-label="New agent">
          <Field label="Agent name" name="name" value={agentName} onInput={setAgentName} failure={failure} required />
          {(prompts.items?.length ?? 0) > 0 && (
            <SelectField id="agent-prompt" label="Prompt" value={promptKey} onChange={setPromptKey} options={[["", "a plain system prompt"], ...prompts.items!.map((p) => p.key)]} />
          )}
          {(bases.items?.length ?? 0) > 0 && (
            <Choices legend="Answers from" options={bases.items!.map((kb) => [kb.id, kb.name] as const)} chosen={kbIds} onChange={setKbIds} />
          )}
          <Submit busy={busy}>Add agent</Submit>
        </form>
      )}
      <ListState items={runs.items} failure={runs.failure} empty="No runs yet." />
      <ul class="rows" aria-label="Runs">
        {runs.items?.map((r) => (
          <li key={r.id}>
            <Link href={`/runs/${r.id}`}>{r.id}</Link> <span class={`status ${r.status?.toLowerCase()}`}>{r.status}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}

const KINDS: [RegExp, string][] = [
  [/^image\//, "image"],
  [/^video\//, "video"],
  [/json/, "json"],
];

function Artifacts({ projectId, canWrite }: { projectId: string; canWrite: boolean }) {
  const list = useList<Named & { kind: string }>(`/v1/artifacts?project_id=${projectId}&limit=50`);
  const [failure, setFailure] = useState<Failure | null>(null);
  const [progress, setProgress] = useState<number | null>(null);
  const send = async (e: Event) => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (!file) return;
    setFailure(null);
    setProgress(0);
    const kind = KINDS.find(([type]) => type.test(file.type))?.[1] ?? "document";
    try {
      const made = await upload<{ id: string }>(`/v1/artifacts?project_id=${projectId}&kind=${kind}&name=${encodeURIComponent(file.name)}`, file, file.type || "application/octet-stream", setProgress);
      navigate(`/artifacts/${made.id}`);
    } catch (err) {
      setFailure(failureOf(err));
    } finally {
      setProgress(null);
    }
  };
  return (
    <section aria-labelledby="artifacts-heading">
      <h2 id="artifacts-heading">Artifacts</h2>
      {canWrite && (
        <div class="field">
          <label for="artifact-file">Upload a file (up to 25 MiB)</label>
          <input id="artifact-file" type="file" onChange={send} disabled={progress !== null} />
        </div>
      )}
      {progress !== null && <progress aria-label="Upload progress" max={1} value={progress} />}
      <FormError failure={failure} />
      <ListState items={list.items} failure={list.failure} empty="No artifacts yet." />
      <ul class="rows" aria-label="Artifacts">
        {list.items?.map((a) => (
          <li key={a.id}>
            <Link href={`/artifacts/${a.id}`}>{a.name}</Link> <small>{a.kind}</small>
          </li>
        ))}
      </ul>
    </section>
  );
}

/** An artifact's latest version, previewed by its type (image, video, text), and a download. */
export function ArtifactPage({ artifactId }: { artifactId: string }) {
  const [artifact, setArtifact] = useState<{ name: string; project_id: string; latest_version: number } | null>(null);
  const [preview, setPreview] = useState<{ url: string; type: string; text?: string } | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  useEffect(() => {
    let url: string | undefined;
    (async () => {
      const a = await api<{ name: string; project_id: string; latest_version: number }>(`/v1/artifacts/${artifactId}`);
      setArtifact(a);
      // The content needs the Authorization header, which <img> and <video> cannot send: fetched, then shown from memory.
      const res = await authorized(`/v1/artifacts/${artifactId}/versions/${a.latest_version}/content`);
      if (!res.ok) await answer(res);
      const blob = await res.blob();
      url = URL.createObjectURL(blob);
      setPreview({ url, type: blob.type, ...(/^text\/|json/.test(blob.type) && { text: await blob.text() }) });
    })().catch((err: unknown) => setFailure(err instanceof ApiProblem ? err.message : "This artifact could not be loaded."));
    return () => url && URL.revokeObjectURL(url);
  }, [artifactId]);
  if (failure) return <p role="alert" class="error">{failure}</p>;
  if (!artifact) return <p class="loading">Loading artifact…</p>;
  return (
    <section>
      <p class="crumbs">
        <Link href={`/projects/${artifact.project_id}`}>Project</Link> / {artifact.name}
      </p>
      <h1>{artifact.name}</h1>
      {!preview && <p class="loading">Loading preview…</p>}
      {preview?.type.startsWith("image/") && <img class="preview" src={preview.url} alt={`Preview of ${artifact.name}`} />}
      {preview?.type.startsWith("video/") && (
        // biome-ignore lint/a11y/useMediaCaption: uploaded videos come without captions; the file name labels it.
        <video class="preview" src={preview.url} controls aria-label={`Preview of ${artifact.name}`} />
      )}
      {preview?.text !== undefined && (
        <figure aria-label={`Preview of ${artifact.name}`}>
          <pre class="preview">{preview.text}</pre>
        </figure>
      )}
      {preview && (
        <p>
          <a href={preview.url} download={artifact.name}>
            Download {artifact.name}
          </a>
        </p>
      )}
    </section>
  );
}
