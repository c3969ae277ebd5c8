import { useEffect, useState } from "preact/hooks";
import { api, upload } from "./api";
import { ProjectHeader } from "./content";
import { ListState, submit, useAction, useList, useOne, when } from "./data";
import { Field, SelectField, FormError, Submit } from "./form";
import { Link } from "./nav";

interface KnowledgeBase {
  id: string;
  project_id: string;
  name: string;
  description: string | null;
  embedding: { model: string; dimensions: number };
  chunking: { max_tokens: number; overlap_tokens: number };
  created_at: string;
}
interface Doc {
  id: string;
  name: string;
  version: number;
  status: "processing" | "ready" | "failed";
  size: number;
  chunk_count: number | null;
  token_count: number | null;
  error: { message?: string } | null;
  updated_at: string;
}
interface Hit {
  chunk_id: string;
  text: string;
  score: number;
  document: { id: string; name: string };
  scoring: Record<string, number | null>;
}
interface Found {
  data: Hit[];
  mode: string;
  providers: { embedding: string | null; vectors: string };
}

/** A project's knowledge bases, and a form for a new one. */
export function KnowledgePage({ projectId, canWrite }: { projectId: string; canWrite: boolean }) {
  const list = useList<KnowledgeBase>(`/v1/knowledge-bases?project_id=${projectId}&limit=100`);
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const action = useAction();
  const create = submit(() =>
    action.run(async () => {
      const made = await api<KnowledgeBase>("/v1/knowledge-bases", { body: { project_id: projectId, name, ...(description && { description }) } });
      list.setItems([made, ...(list.items ?? [])]);
      setName("");
      setDescription("");
    }),
  );
  return (
    <>
      <ProjectHeader projectId={projectId} here="knowledge" />
      {canWrite && (
        <form class="inline" onSubmit={create} noValidate aria-label="New knowledge base">
          <Field id="kb-name" label="Knowledge base name" name="name" value={name} onInput={setName} failure={action.failure} required />
          <Submit busy={action.busy}>Create</Submit>
          <Field id="kb-description" label="Description" name="description" value={description} onInput={setDescription} failure={action.failure} />
        </form>
      )}
      <FormError failure={action.failure} />
      <ListState items={list.items} failure={list.failure} empty="No knowledge bases yet: one holds the documents agents answer from." />
      <ul class="cards" aria-label="Knowledge bases">
        {list.items?.map((kb) => (
          <li key={kb.id}>
            <Link href={`/knowledge/${kb.id}`}>
              <strong>{kb.name}</strong>
            </Link>
            {kb.description && <small>{kb.description}</small>}
            <small>
              {kb.embedding.model.split("/").at(-1)} · chunks of {kb.chunking.max_tokens} tokens
            </small>
          </li>
        ))}
      </ul>
    </>
  );
}

const TYPES: Record<string, string> = { md: "text/markdown", markdown: "text/markdown", txt: "text/plain", html: "text/html", htm: "text/html", json: "application/json" };
const typeOf = (file: File) => TYPES[file.name.split(".").at(-1)?.toLowerCase() ?? ""] ?? (file.type || "application/octet-stream");
const kib = (n: number) => (n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`);

/** One knowledge base: its documents (upload with progress, their processing status) and search with scores. */
export function KnowledgeBasePage({ kbId, canWrite }: { kbId: string; canWrite: boolean }) {
  const kb = useOne<KnowledgeBase>(`/v1/knowledge-bases/${kbId}`);
  const docs = useList<Doc>(`/v1/knowledge-bases/${kbId}/documents?limit=100`);
  const [progress, setProgress] = useState<number | null>(null);
  const action = useAction();
  const processing = docs.items?.some((d) => d.status === "processing");
  // A document is chunked and embedded on a queue: its status is polled until none is processing.
  useEffect(() => {
    if (!processing) return;
    const timer = setInterval(() => void docs.reload(), 1000);
    return () => clearInterval(timer);
  }, [processing]);
  if (kb.failure) return <p role="alert" class="error">{kb.failure.message}</p>;
  if (!kb.value) return <p class="loading">Loading knowledge base…</p>;
  const send = (e: Event) => {
    const input = e.target as HTMLInputElement;
    const file = input.files?.[0];
    if (!file) return;
    void action.run(async () => {
      setProgress(0);
      try {
        const made = await upload<Doc>(`/v1/knowledge-bases/${kbId}/documents?name=${encodeURIComponent(file.name)}`, file, typeOf(file), setProgress);
        docs.setItems([made, ...(docs.items ?? []).filter((d) => d.id !== made.id)]);
      } finally {
        setProgress(null);
        input.value = "";
      }
    });
  };
  const remove = (d: Doc) => {
    if (!confirm(`Delete ${d.name}? Its chunks and vectors go too.`)) return;
    void action.run(async () => {
      await api(`/v1/knowledge-bases/${kbId}/documents/${d.id}`, { method: "DELETE" });
      docs.setItems(docs.items?.filter((x) => x.id !== d.id) ?? null);
    });
  };
  return (
    <>
      <p class="crumbs">
        <Link href={`/projects/${kb.value.project_id}/knowledge`}>Knowledge</Link> / {kb.value.name}
      </p>
      <h1>{kb.value.name}</h1>
      <div class="columns">
        <section aria-labelledby="documents-heading">
          <h2 id="documents-heading">Documents</h2>
          {canWrite && (
            <div class="field">
              <label for="document-file">Add a document (Markdown, text, HTML or JSON)</label>
              <input id="document-file" type="file" accept=".md,.markdown,.txt,.html,.htm,.json,text/*,application/json" onChange={send} disabled={progress !== null} />
            </div>
          )}
          {progress !== null && <progress aria-label="Upload progress" max={1} value={progress} />}
          <FormError failure={action.failure} />
          <ListState items={docs.items} failure={docs.failure} empty="No documents yet." />
          <ul class="rows" aria-label="Documents">
            {docs.items?.map((d) => (
              <li key={d.id}>
                <strong>{d.name}</strong> <span class={`status ${d.status}`}>{d.status}</span>
                <small class="meta">
                  v{d.version} · {kib(d.size)}
                  {d.chunk_count !== null && ` · ${d.chunk_count} chunks, ${d.token_count} tokens`} · {when(d.updated_at)}
                </small>
                {d.error?.message && <span class="error">{d.error.message}</span>}
                {canWrite && (
                  <button type="button" class="link" onClick={() => remove(d)} aria-label={`Delete ${d.name}`}>
                    Delete
                  </button>
                )}
              </li>
            ))}
          </ul>
        </section>
        <Search kbId={kbId} />
      </div>
    </>
  );
}

function Search({ kbId }: { kbId: string }) {
  const [query, setQuery] = useState("");
  const [mode, setMode] = useState("hybrid");
  const [found, setFound] = useState<Found | null>(null);
  const action = useAction();
  const search = submit(() =>
    action.run(async () => {
      setFound(await api<Found>(`/v1/knowledge-bases/${kbId}/search`, { body: { query, mode, top_k: 8 } }));
    }),
  );
  return (
    <section aria-labelledby="search-heading">
      <h2 id="search-heading">Search</h2>
      <form onSubmit={search} noValidate aria-label="Search the knowledge base">
        <Field id="search-query" label="Question or words" name="query" type="search" value={query} onInput={setQuery} failure={action.failure} required />
        <SelectField id="search-mode" label="Mode" value={mode} onChange={setMode} options={[["hybrid", "hybrid (meaning and words)"], ["vector", "meaning only"], ["keyword", "words only"]]} />
        <FormError failure={action.failure} />
        <Submit busy={action.busy}>Search</Submit>
      </form>
      {found && (
        <>
          <p class="meta">
            {found.data.length} result{found.data.length === 1 ? "" : "s"} ({found.mode}; embeddings by {found.providers.embedding ?? "—"}, vectors in {found.providers.vectors})
          </p>
          <ol class="rows" aria-label="Results">
            {found.data.map((h) => (
              <li key={h.chunk_id} class="hit">
                <span class="score" title={Object.entries(h.scoring).map(([k, v]) => `${k}: ${v ?? "—"}`).join(", ")}>
                  {h.score.toFixed(3)}
                </span>
                <strong>{h.document.name}</strong>
                <p class="quote">{h.text.length > 400 ? `${h.text.slice(0, 400)}…` : h.text}</p>
              </li>
            ))}
          </ol>
        </>
      )}
    </section>
  );
}
