import { useEffect, useState } from "preact/hooks";
import { api, ApiProblem, authorized, answer } from "./api";
import { Link } from "./nav";

interface Run {
  id: string;
  project_id: string;
  status: string;
  output: string | null;
  error: { code: string; message: string | null } | null;
  artifact_id: string | null;
  usage: { model: string | null; tokens_in: number | null; tokens_out: number | null } | null;
}

/**
 * A run as it happens: its events streamed (server-sent events read with fetch, since EventSource
 * cannot send the Authorization header), and its output when it has one.
 */
export function RunPage({ runId }: { runId: string }) {
  const [run, setRun] = useState<Run | null>(null);
  const [events, setEvents] = useState<{ id: string; type: string }[]>([]);
  const [failure, setFailure] = useState<string | null>(null);
  useEffect(() => {
    const abort = new AbortController();
    const load = () => api<Run>(`/v1/runs/${runId}`).then(setRun);
    (async () => {
      await load();
      const res = await authorized(`/v1/runs/${runId}/events`, { signal: abort.signal, headers: { accept: "text/event-stream" } });
      if (!res.ok) await answer(res);
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer += value;
        const blocks = buffer.split("\n\n");
        buffer = blocks.pop() ?? "";
        for (const block of blocks) {
          const id = /^id: (.*)$/m.exec(block)?.[1];
          const type = /^event: (.*)$/m.exec(block)?.[1];
          if (id && type) setEvents((list) => (list.some((e) => e.id === id) ? list : [...list, { id, type }]));
        }
        await load();
      }
      await load();
    })().catch((err: unknown) => {
      if (!abort.signal.aborted) setFailure(err instanceof ApiProblem ? err.message : "The run's events could not be followed.");
    });
    return () => abort.abort();
  }, [runId]);
  if (failure) return <p role="alert" class="error">{failure}</p>;
  if (!run) return <p class="loading">Loading run…</p>;
  return (
    <section>
      <p class="crumbs">
        <Link href={`/projects/${run.project_id}`}>Project</Link> / {run.id}
      </p>
      <h1>
        Run <span class={`status ${run.status.toLowerCase()}`} role="status">{run.status}</span>
      </h1>
      <ol class="events" aria-label="Run events">
        {events.map((e) => (
          <li key={e.id}>{e.type}</li>
        ))}
      </ol>
      {run.output !== null && (
        <>
          <h2>Output</h2>
          <figure aria-label="Run output">
            <pre class="preview">{run.output}</pre>
          </figure>
        </>
      )}
      {run.error && (
        <p role="alert" class="error">
          {run.error.code}: {run.error.message}
        </p>
      )}
      {run.usage?.tokens_out != null && (
        <p class="meta">
          {run.usage.model} · {run.usage.tokens_in} tokens in, {run.usage.tokens_out} out
        </p>
      )}
      {run.artifact_id && (
        <p>
          <Link href={`/artifacts/${run.artifact_id}`}>Open the output artifact</Link>
        </p>
      )}
    </section>
  );
}
