import { useEffect, useState } from "preact/hooks";
import { api, answer, authorized } from "./api";
import { ListState, submit, useAction, useLatest, useList, useOne, when } from "./data";
import { Field, SelectField, FormError, Submit } from "./form";

interface Entry {
  id: string;
  action: string;
  actor: { type: string; id: string | null };
  resource: { type: string; id: string | null };
  request_id: string;
  details: Record<string, unknown> | null;
  created_at: string;
}
interface Stats {
  total: number;
  by_action: { action: string; count: number }[];
}

const FILTERS = ["action", "actor_id", "resource_id", "from", "to"] as const;
type Filters = Record<(typeof FILTERS)[number], string>;

/** The query string of the filters that are set (dates as whole days, `to` through its end). */
function query(f: Filters) {
  const q = new URLSearchParams();
  for (const key of FILTERS) {
    const v = f[key].trim();
    if (!v) continue;
    q.set(key, key === "from" ? new Date(`${v}T00:00:00Z`).toISOString() : key === "to" ? new Date(`${v}T23:59:59.999Z`).toISOString() : v);
  }
  return q;
}

/** Saves a response as a file: the API wants the Authorization header, which a plain link cannot send. */
async function download(path: string, fallbackName: string) {
  const res = await authorized(path);
  if (!res.ok) await answer(res);
  const name = /filename="([^"]+)"/.exec(res.headers.get("content-disposition") ?? "")?.[1] ?? fallbackName;
  const url = URL.createObjectURL(await res.blob());
  const a = Object.assign(document.createElement("a"), { href: url, download: name });
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** The audit log: filters, pages of entries, counts by action, and an export of what the filters select. */
export function AuditPage() {
  const [form, setForm] = useState<Filters>({ action: "", actor_id: "", resource_id: "", from: "", to: "" });
  const [applied, setApplied] = useState<Filters>(form);
  const [entries, setEntries] = useState<Entry[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [stats, setStats] = useState<Stats | null>(null);
  const action = useAction();
  const latest = useLatest();
  const load = (f: Filters, after: string | null) =>
    action.run(async () => {
      const fresh = latest.start();
      const q = query(f);
      q.set("limit", "50");
      if (after) q.set("cursor", after);
      const page = await api<{ data: Entry[]; next_cursor: string | null }>(`/v1/audit-log?${q}`);
      if (!fresh()) return;
      setEntries(after ? [...(entries ?? []), ...page.data] : page.data);
      setCursor(page.next_cursor);
      if (!after) {
        const s = new URLSearchParams([...query(f)].filter(([k]) => k === "from" || k === "to"));
        const counted = await api<Stats>(`/v1/audit-log/stats?${s}`);
        if (fresh()) setStats(counted);
      }
    });
  useEffect(() => {
    void load(applied, null);
  }, [applied]);
  const set = (key: keyof Filters) => (v: string) => setForm({ ...form, [key]: v });
  const exportAs = (format: "csv" | "ndjson") =>
    action.run(async () => {
      const q = query(applied);
      q.set("format", format);
      await download(`/v1/audit-log/export?${q}`, `audit.${format}`);
    });
  return (
    <>
      <h1>Audit log</h1>
      <form class="filters" onSubmit={submit(() => setApplied({ ...form }))} noValidate aria-label="Filter the audit log">
        <Field id="audit-action" label="Action (e.g. post.submitted)" name="action" value={form.action} onInput={set("action")} failure={action.failure} />
        <Field id="audit-actor" label="Actor id" name="actor_id" value={form.actor_id} onInput={set("actor_id")} failure={action.failure} />
        <Field id="audit-resource" label="Resource id" name="resource_id" value={form.resource_id} onInput={set("resource_id")} failure={action.failure} />
        <Field id="audit-from" label="From" name="from" type="date" value={form.from} onInput={set("from")} failure={action.failure} />
        <Field id="audit-to" label="To" name="to" type="date" value={form.to} onInput={set("to")} failure={action.failure} />
        <Submit busy={action.busy}>Apply filters</Submit>
      </form>
      <FormError failure={action.failure} />
      <div class="actions">
        <button type="button" class="secondary" onClick={() => exportAs("csv")} disabled={action.busy}>
          Export CSV
        </button>
        <button type="button" class="secondary" onClick={() => exportAs("ndjson")} disabled={action.busy}>
          Export NDJSON
        </button>
      </div>
      {stats && (
        <p class="meta" data-testid="audit-total">
          {stats.total.toLocaleString()} entries in this period{stats.by_action.length > 0 && ": "}
          {stats.by_action
            .slice(0, 6)
            .map((a) => `${a.action} ${a.count}`)
            .join(" · ")}
        </p>
      )}
      <ListState items={entries} failure={null} empty="No entries match these filters." />
      {entries && entries.length > 0 && (
        <div class="scroll">
          <table aria-label="Audit entries">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Action</th>
                <th scope="col">Actor</th>
                <th scope="col">Resource</th>
                <th scope="col">Details</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((e) => (
                <tr key={e.id}>
                  <td>{when(e.created_at)}</td>
                  <td>
                    <code>{e.action}</code>
                  </td>
                  <td>
                    {e.actor.type} <small class="meta">{e.actor.id}</small>
                  </td>
                  <td>
                    {e.resource.type} <small class="meta">{e.resource.id}</small>
                  </td>
                  <td>
                    <small class="meta">{e.details ? JSON.stringify(e.details) : ""}</small>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {cursor && (
        <button type="button" class="secondary" onClick={() => load(applied, cursor)} disabled={action.busy}>
          Load more
        </button>
      )}
    </>
  );
}

interface Export {
  id: string;
  scope: string;
  status: string;
  progress: { files: number; current: string | null; rows: number; bytes: number } | null;
  bytes: number | null;
  download: { url: string; expires_at: string } | null;
  error: string | null;
  created_at: string;
  expires_at: string;
}
interface Retention {
  run_retention_days: number | null;
  audit_retention_days: number;
  webhook_retention_days: number;
  uploads_on_erasure: "keep" | "erase";
  updated_at: string | null;
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

/** Data exports (with their progress while they run) and the retention settings. */
export function CompliancePage({ canManage }: { canManage: boolean }) {
  const list = useList<Export>("/v1/exports?limit=20");
  const action = useAction();
  const running = list.items?.some((x) => x.status === "queued" || x.status === "running");
  // While an export is being written, its progress is polled (every 1.5 s; it stops when none runs).
  useEffect(() => {
    if (!running) return;
    const timer = setInterval(() => void list.reload(), 1500);
    return () => clearInterval(timer);
  }, [running]);
  // The archive's link is signed for 10 minutes on each read of the export: read it when wanted.
  const fetchArchive = (x: Export) =>
    action.run(async () => {
      const fresh = await api<Export>(`/v1/exports/${x.id}`);
      if (!fresh.download) throw new Error("This export has no archive any more.");
      Object.assign(document.createElement("a"), { href: fresh.download.url, download: `tessera-export-${x.id}.zip` }).click();
    });
  const start = (scope: "me" | "tenant") =>
    action.run(async () => {
      const made = await api<Export>("/v1/exports", { body: { scope } });
      list.setItems([made, ...(list.items ?? [])]);
    });
  return (
    <>
      <h1>Data and compliance</h1>
      <section class="panel" aria-labelledby="exports-heading">
        <h2 id="exports-heading">Data exports</h2>
        <p class="aside">A ZIP of the data with a manifest of every file's rows and SHA-256. Kept 7 days.</p>
        <div class="actions">
          <button type="button" onClick={() => start("me")} disabled={action.busy}>
            Export my data
          </button>
          {canManage && (
            <button type="button" class="secondary" onClick={() => start("tenant")} disabled={action.busy}>
              Export the whole workspace
            </button>
          )}
        </div>
        <FormError failure={action.failure} />
        <ListState items={list.items} failure={list.failure} empty="No exports yet." />
        <ul class="rows" aria-label="Exports">
          {list.items?.map((x) => (
            <li key={x.id}>
              <span class={`status ${x.status}`}>{x.status}</span>
              <span>{x.scope === "me" ? "My data" : "Whole workspace"}</span>
              <small class="meta">{when(x.created_at)}</small>
              {(x.status === "queued" || x.status === "running") && (
                <span class="meta" role="status">
                  {x.progress ? `${x.progress.files} files, ${x.progress.rows.toLocaleString()} rows, ${mib(x.progress.bytes)}${x.progress.current ? ` — ${x.progress.current}` : ""}` : "waiting to start…"}
                </span>
              )}
              {x.status === "ready" && (
                <button type="button" class="link" onClick={() => fetchArchive(x)} disabled={action.busy}>
                  Download ({mib(x.bytes ?? 0)})
                </button>
              )}
              {x.error && <span class="error">{x.error}</span>}
            </li>
          ))}
        </ul>
      </section>
      {canManage && <RetentionSettings />}
    </>
  );
}

function RetentionSettings() {
  const settings = useOne<Retention>("/v1/settings/compliance");
  const [form, setForm] = useState<{ run: string; audit: string; webhook: string; uploads: string } | null>(null);
  const [saved, setSaved] = useState(false);
  const action = useAction();
  const s = settings.value;
  useEffect(() => {
    if (s) setForm({ run: s.run_retention_days?.toString() ?? "", audit: String(s.audit_retention_days), webhook: String(s.webhook_retention_days), uploads: s.uploads_on_erasure });
  }, [s]);
  if (settings.failure) return <p role="alert" class="error">{settings.failure.message}</p>;
  if (!form) return <p class="loading">Loading retention…</p>;
  const set = (key: keyof typeof form) => (v: string) => {
    setSaved(false);
    setForm({ ...form, [key]: v });
  };
  // A number the person typed goes as a number; a non-number goes as typed, for the API to name.
  const num = (v: string) => (v.trim() !== "" && Number.isFinite(Number(v)) ? Number(v) : v);
  const save = submit(() =>
    action.run(async () => {
      settings.setValue(
        await api<Retention>("/v1/settings/compliance", {
          method: "PATCH",
          body: { run_retention_days: form.run.trim() === "" ? null : num(form.run), audit_retention_days: num(form.audit), webhook_retention_days: num(form.webhook), uploads_on_erasure: form.uploads },
        }),
      );
      setSaved(true);
    }),
  );
  return (
    <section class="panel" aria-labelledby="retention-heading">
      <h2 id="retention-heading">Retention</h2>
      <form onSubmit={save} noValidate aria-label="Retention">
        <Field id="retention-runs" label="Keep runs for (days)" name="run_retention_days" type="number" value={form.run} onInput={set("run")} failure={action.failure} hint="Empty: keep runs for as long as the workspace exists." />
        <Field id="retention-audit" label="Keep audit entries for (days)" name="audit_retention_days" type="number" value={form.audit} onInput={set("audit")} failure={action.failure} />
        <Field id="retention-webhooks" label="Keep webhook attempts for (days)" name="webhook_retention_days" type="number" value={form.webhook} onInput={set("webhook")} failure={action.failure} />
        <SelectField id="retention-uploads" label="A departing member's uploads on erasure" value={form.uploads} onChange={set("uploads")} options={[["keep", "keep (they belong to the workspace)"], ["erase", "erase with the person"]]} />
        <FormError failure={action.failure} />
        <Submit busy={action.busy}>Save retention</Submit>
        {saved && <p role="status">Saved.</p>}
      </form>
    </section>
  );
}
