import { useEffect, useState } from "preact/hooks";
import { api } from "./api";
import { ListState, submit, useAction, useLatest, useOne, when } from "./data";
import { Field, FormError, Submit } from "./form";

// The platform operator's console, on the platform host: tenants, plans, credits, domains and the
// database pool, behind the operator's token (PLATFORM_ADMIN_TOKEN), kept in this tab only.

const KEY = "tessera.operator";
const token = () => sessionStorage.getItem(KEY) ?? "";

interface Tenant {
  id: string;
  slug: string;
  name: string;
  status: "active" | "suspended" | "erasing" | "erased";
  plan: string;
  db_binding: string;
  /** The shard whose Worker serves it; null once erased. */
  shard: string | null;
  jurisdiction: "default" | "eu";
  residency: { objects: { bucket: string }; conversations: { placement: "default" | "cloudflare" | "simulated" } };
  created_at: string;
}
interface Plan {
  id: string;
  name: string;
  requests_per_minute: number;
  monthly_tokens: number;
  seats: number;
  projects: number;
  storage_bytes: number;
  tenants: number;
}
interface Pool {
  bound: number;
  registered: number;
  free: number;
  assigned: number;
  behind: number;
  low_water: number;
  low: boolean;
}
interface Rollout {
  id: string;
  target: string;
  status: string;
  progress: { done: number; failed: number; pending: number };
  failure: { database: string; migration: string | null; statement: string | null; error: string } | null;
}
interface Credits {
  balance_micros: number;
  data: { id: string; amount_micros: number; kind: string; reason: string; created_at: string }[];
}

const op = <T,>(path: string, init: { method?: string; body?: unknown } = {}) => api<T>(path, { ...init, bearer: token() });
const dollars = (micros: number) => `$${(micros / 1e6).toFixed(2)}`;
const gib = (n: number) => `${(n / 1024 ** 3).toLocaleString()} GiB`;

/** What the operator reads, with the operator's token. */
const useOp = <T,>(path: string) => useOne<T>(path, token());

export function OperatorApp() {
  const [signedIn, setSignedIn] = useState(() => token() !== "");
  const [entered, setEntered] = useState("");
  const action = useAction();
  const signIn = submit(() =>
    action.run(async () => {
      // The token is checked by a cheap read before it is kept.
      await api("/v1/platform/databases", { bearer: entered });
      sessionStorage.setItem(KEY, entered);
      setSignedIn(true);
    }),
  );
  if (!signedIn)
    return (
      <main class="narrow">
        <h1>Platform operator</h1>
        <form onSubmit={signIn} noValidate aria-label="Operator sign-in">
          <Field label="Operator token" name="token" type="password" autoComplete="off" value={entered} onInput={setEntered} failure={action.failure} required hint="PLATFORM_ADMIN_TOKEN (locally in .dev.vars)." />
          <FormError failure={action.failure} />
          <Submit busy={action.busy}>Sign in</Submit>
        </form>
      </main>
    );
  const signOut = () => {
    sessionStorage.removeItem(KEY);
    setSignedIn(false);
  };
  return (
    <>
      <header class="bar">
        <span class="brand">Tessera operator</span>
        <span class="grow" />
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <OperatorConsole />
    </>
  );
}

/** The operator's pages; the plans are read once and shared (a plan change moves their counts). */
function OperatorConsole() {
  const plans = useOp<{ data: Plan[] }>("/v1/platform/plans");
  return (
    <main class="wide">
      <Tenants plans={plans} />
      <div class="columns">
        <Plans plans={plans} />
        <DatabasePool />
        <Domains />
      </div>
    </main>
  );
}

type SharedPlans = ReturnType<typeof useOp<{ data: Plan[] }>>;

function Tenants({ plans }: { plans: SharedPlans }) {
  // Active tenants first: erased ones stay listed as tombstones, which would bury the rest.
  const [status, setStatus] = useState("active");
  const [tenants, setTenants] = useState<Tenant[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const action = useAction();
  const latest = useLatest();
  const load = (after: string | null) =>
    action.run(async () => {
      const fresh = latest.start();
      const q = new URLSearchParams({ limit: "50", ...(status && { status }), ...(after && { cursor: after }) });
      const page = await op<{ data: Tenant[]; next_cursor: string | null }>(`/v1/platform/tenants?${q}`);
      if (!fresh()) return;
      setTenants(after ? [...(tenants ?? []), ...page.data] : page.data);
      setCursor(page.next_cursor);
    });
  useEffect(() => {
    void load(null);
  }, [status]);
  const replace = (t: Tenant) => {
    latest.bump();
    setTenants((list) => list?.map((x) => (x.id === t.id ? t : x)) ?? null);
  };
  const act = (t: Tenant, path: string, body: unknown = {}) =>
    action.run(async () => {
      replace(await op<Tenant>(`/v1/platform/tenants/${t.id}/${path}`, { body }));
      void plans.reload();
    });
  const erase = (t: Tenant) => {
    const typed = prompt(`Erasing ${t.name} deletes every one of its stores for good and signs a receipt. Type its address (${t.slug}) to erase it.`);
    if (typed !== t.slug) return;
    void action.run(async () => {
      await op(`/v1/platform/tenants/${t.id}/erase`, { body: {} });
      replace({ ...t, status: "erasing" });
    });
  };
  return (
    <section aria-labelledby="tenants-heading">
      <h1 id="tenants-heading">Tenants</h1>
      <div class="field inline-field">
        <label for="tenant-status">Status</label>
        <select id="tenant-status" value={status} onChange={(e) => setStatus((e.target as HTMLSelectElement).value)}>
          <option value="">any</option>
          {["active", "suspended", "erasing", "erased"].map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
        <button type="button" class="secondary" onClick={() => load(null)} disabled={action.busy} aria-label="Refresh tenants">
          Refresh
        </button>
      </div>
      <FormError failure={action.failure} />
      <ListState items={tenants} failure={null} empty="No tenants." />
      {tenants && tenants.length > 0 && (
        <div class="scroll">
          <table aria-label="Tenants">
            <thead>
              <tr>
                <th scope="col">Tenant</th>
                <th scope="col">Status</th>
                <th scope="col">Plan</th>
                <th scope="col">Data</th>
                <th scope="col">Since</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {tenants.map((t) => {
                const gone = t.status === "erasing" || t.status === "erased";
                return [
                  <tr key={t.id}>
                    <td>
                      <strong>{t.name}</strong> <small class="meta">{t.slug}</small>
                    </td>
                    <td>
                      <span class={`status ${t.status}`}>{t.status}</span>
                    </td>
                    <td>
                      {gone ? (
                        t.plan
                      ) : (
                        <select aria-label={`Plan of ${t.name}`} value={t.plan} disabled={action.busy} onChange={(e) => act(t, "plan", { plan: (e.target as HTMLSelectElement).value })}>
                          {(plans.value?.data ?? [{ id: t.plan, name: t.plan }]).map((p) => (
                            <option key={p.id} value={p.id}>
                              {p.name}
                            </option>
                          ))}
                        </select>
                      )}
                    </td>
                    <td title={`Objects in ${t.residency.objects.bucket}; conversation rooms ${t.residency.conversations.placement === "simulated" ? "placed by simulation (local)" : `placed: ${t.residency.conversations.placement}`}`}>
                      <code>{t.db_binding}</code> · {t.shard ? `shard ${t.shard}` : "no shard"} · {t.jurisdiction === "eu" ? "EU" : "default"}
                    </td>
                    <td>{new Date(t.created_at).toLocaleDateString()}</td>
                    <td>
                      <div class="actions">
                      {t.status === "active" && (
                        <button type="button" class="link" onClick={() => act(t, "suspend")} disabled={action.busy} aria-label={`Suspend ${t.name}`}>
                          Suspend
                        </button>
                      )}
                      {t.status === "suspended" && (
                        <>
                          <button type="button" class="link" onClick={() => act(t, "reactivate")} disabled={action.busy} aria-label={`Reactivate ${t.name}`}>
                            Reactivate
                          </button>
                          <button type="button" class="link danger" onClick={() => erase(t)} disabled={action.busy} aria-label={`Erase ${t.name}`}>
                            Erase
                          </button>
                        </>
                      )}
                      {!gone && (
                        <button type="button" class="link" aria-expanded={open === t.id} onClick={() => setOpen(open === t.id ? null : t.id)} aria-label={`Credits of ${t.name}`}>
                          Credits
                        </button>
                      )}
                      </div>
                    </td>
                  </tr>,
                  open === t.id && !gone && (
                    <tr key={`${t.id}-credits`}>
                      <td colSpan={6}>
                        <TenantCredits tenant={t} />
                      </td>
                    </tr>
                  ),
                ];
              })}
            </tbody>
          </table>
        </div>
      )}
      {cursor && (
        <button type="button" class="secondary" onClick={() => load(cursor)} disabled={action.busy}>
          Load more
        </button>
      )}
    </section>
  );
}

function TenantCredits({ tenant }: { tenant: Tenant }) {
  const credits = useOp<Credits>(`/v1/platform/tenants/${tenant.id}/credits?limit=10`);
  const [amount, setAmount] = useState("");
  const [reason, setReason] = useState("");
  const action = useAction();
  const grant = submit(() =>
    action.run(async () => {
      // Dollars as typed, to whole micro-dollars; a non-number goes as typed for the API to name.
      const micros = amount.trim() !== "" && Number.isFinite(Number(amount)) ? Math.round(Number(amount) * 1e6) : amount;
      await op(`/v1/platform/tenants/${tenant.id}/credits`, { body: { amount_micros: micros, reason } });
      setAmount("");
      setReason("");
      await credits.reload();
    }),
  );
  return (
    <div class="credits">
      {credits.failure && <p role="alert" class="error">{credits.failure.message}</p>}
      {credits.value && (
        <p data-testid="balance">
          Balance <strong>{dollars(credits.value.balance_micros)}</strong>
        </p>
      )}
      <ul class="rows" aria-label={`Ledger of ${tenant.name}`}>
        {credits.value?.data.map((e) => (
          <li key={e.id}>
            {e.kind === "grant" ? "+" : "−"}
            {dollars(Math.abs(e.amount_micros))} <small class="meta">{e.reason} · {when(e.created_at)}</small>
          </li>
        ))}
      </ul>
      <form class="filters" onSubmit={grant} noValidate aria-label={`Grant credit to ${tenant.name}`}>
        <Field id={`grant-amount-${tenant.id}`} label="Amount (USD)" name="amount_micros" type="number" value={amount} onInput={setAmount} failure={action.failure} required />
        <Field id={`grant-reason-${tenant.id}`} label="Reason" name="reason" value={reason} onInput={setReason} failure={action.failure} required />
        <Submit busy={action.busy}>Grant</Submit>
      </form>
      <FormError failure={action.failure} />
    </div>
  );
}

function Plans({ plans }: { plans: SharedPlans }) {
  return (
    <section aria-labelledby="plans-heading">
      <h2 id="plans-heading">Plans</h2>
      <ListState items={plans.value?.data ?? null} failure={plans.failure} empty="No plans." />
      <ul class="rows" aria-label="Plans">
        {plans.value?.data.map((p) => (
          <li key={p.id}>
            <strong>{p.name}</strong>
            <small class="meta">
              {p.tenants} tenant{p.tenants === 1 ? "" : "s"} · {p.monthly_tokens.toLocaleString()} tokens a month · {p.seats} seats · {p.projects} projects · {gib(p.storage_bytes)} · {p.requests_per_minute}/min
            </small>
          </li>
        ))}
      </ul>
    </section>
  );
}

function DatabasePool() {
  const pool = useOp<Pool>("/v1/platform/databases");
  const [synced, setSynced] = useState<{ registered: string[]; unmigrated: string[]; remaining: number } | null>(null);
  const action = useAction();
  const sync = () =>
    action.run(async () => {
      const result = await op<{ registered: string[]; unmigrated: string[]; remaining: number; pool: Pool }>("/v1/platform/databases/sync", { body: {} });
      pool.setValue(result.pool);
      setSynced(result);
    });
  const [rollout, setRollout] = useState<Rollout | null>(null);
  const rollOut = () =>
    action.run(async () => {
      setRollout(await op<Rollout>("/v1/platform/migrations", { body: {} }));
    });
  // A running rollout is followed until it stops, and the pool's counts with it.
  useEffect(() => {
    if (rollout?.status !== "running") return;
    const timer = setTimeout(async () => {
      setRollout(await op<Rollout>(`/v1/platform/migrations/${rollout.id}`));
      await pool.reload();
    }, 1000);
    return () => clearTimeout(timer);
  }, [rollout]);
  const p = pool.value;
  return (
    <section aria-labelledby="pool-heading">
      <h2 id="pool-heading">Database pool</h2>
      {pool.failure && <p role="alert" class="error">{pool.failure.message}</p>}
      {p && (
        <>
          <p data-testid="pool">
            <strong>{p.free}</strong> free of {p.registered} registered ({p.assigned} assigned; {p.bound} bound to this Worker)
          </p>
          <meter min={0} max={Math.max(1, p.registered)} low={p.low_water} optimum={p.registered} value={p.free} aria-label="Free databases" />
          {p.low && (
            <p role="alert" class="error">
              Fewer than {p.low_water} free databases: provision more (npm run db:provision) before sign-ups are refused.
            </p>
          )}
        </>
      )}
      <button type="button" class="secondary" onClick={sync} disabled={action.busy}>
        Migrate and register new databases
      </button>
      {p && p.behind > 0 && (
        <p>
          {p.behind} behind the newest schema.{" "}
          <button type="button" class="link" onClick={rollOut} disabled={action.busy}>
            Roll it out
          </button>
        </p>
      )}
      {rollout && (
        <p role="status">
          Rollout to {rollout.target}: {rollout.status} — {rollout.progress.done} done, {rollout.progress.pending} pending
          {rollout.failure && `; failed at ${rollout.failure.database} (${rollout.failure.migration}): ${rollout.failure.error}`}
        </p>
      )}
      {synced && (
        <p role="status">
          Registered {synced.registered.length}
          {synced.unmigrated.length > 0 && `; not migrated yet: ${synced.unmigrated.join(", ")}`}
          {synced.remaining > synced.unmigrated.length && `; ${synced.remaining - synced.unmigrated.length} more to go (press again)`}.
        </p>
      )}
      <FormError failure={action.failure} />
    </section>
  );
}

function Domains() {
  const domains = useOp<{ data: { hostname: string; tenant_id: string; verified_at: string }[] }>("/v1/platform/domains");
  const [tenant, setTenant] = useState("");
  const [hostname, setHostname] = useState("");
  const action = useAction();
  const attach = submit(() =>
    action.run(async () => {
      await op("/v1/platform/domains", { body: { tenant, hostname } });
      setHostname("");
      await domains.reload();
    }),
  );
  const detach = (h: string) => {
    if (!confirm(`Detach ${h}? It stops reaching its tenant at once.`)) return;
    void action.run(async () => {
      await op(`/v1/platform/domains/${encodeURIComponent(h)}`, { method: "DELETE" });
      await domains.reload();
    });
  };
  return (
    <section aria-labelledby="domains-heading">
      <h2 id="domains-heading">Custom domains</h2>
      <form onSubmit={attach} noValidate aria-label="Attach a domain">
        <Field id="domain-tenant" label="Tenant (id or address)" name="tenant" value={tenant} onInput={setTenant} failure={action.failure} required />
        <Field id="domain-hostname" label="Hostname (verified)" name="hostname" value={hostname} onInput={setHostname} failure={action.failure} required />
        <FormError failure={action.failure} />
        <Submit busy={action.busy}>Attach</Submit>
      </form>
      <ListState items={domains.value?.data ?? null} failure={domains.failure} empty="No custom domains." />
      <ul class="rows" aria-label="Domains">
        {domains.value?.data.map((d) => (
          <li key={d.hostname}>
            <strong>{d.hostname}</strong> <small class="meta">{d.tenant_id}</small>
            <button type="button" class="link" onClick={() => detach(d.hostname)} aria-label={`Detach ${d.hostname}`}>
              Detach
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}
