import { useEffect, useState } from "preact/hooks";
import { api } from "./api";
import { type Failure, failureOf } from "./form";

interface Totals {
  calls: number;
  tokens_in: number;
  tokens_out: number;
  cost_micros: number;
}
type Grouped = { data: (Totals & { key: string })[]; total: Totals; from: string; to: string };
interface Plan {
  plan: { name: string };
  limits: { monthly_tokens: number; projects: number; seats: number; storage_bytes: number };
  usage: { tokens: number; projects: number; seats: number; storage_bytes: number; cost_micros: number };
}

const tokens = (t: Totals) => t.tokens_in + t.tokens_out;
const dollars = (micros: number) => `$${(micros / 1e6).toFixed(micros < 10_000 ? 4 : 2)}`;

/**
 * A bar chart in SVG: one bar per key, labelled, with the values in a table beside it for screen
 * readers and for reading exact numbers.
 */
function Bars({ title, rows, value, format, label = (k) => k }: { title: string; rows: (Totals & { key: string })[]; value: (t: Totals) => number; format: (n: number) => string; label?: (key: string) => string }) {
  const max = Math.max(1, ...rows.map(value));
  const width = Math.max(rows.length * 28, 280);
  // Room for about 5.5 px a character under each bar.
  const clip = (text: string) => {
    const room = Math.max(3, Math.floor(width / rows.length / 5.5));
    return text.length > room ? `${text.slice(0, room - 1)}…` : text;
  };
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      {rows.length === 0 ? (
        <p class="empty">Nothing used in this period.</p>
      ) : (
        <svg viewBox={`0 0 ${width} 140`} role="img" aria-label={`${title}: ${rows.map((r) => `${label(r.key)} ${format(value(r))}`).join(", ")}`}>
          {rows.map((r, i) => {
            const h = Math.max(1, (value(r) / max) * 110);
            return (
              <g key={r.key}>
                <rect class="bar" x={i * (width / rows.length) + 4} y={120 - h} width={width / rows.length - 8} height={h} data-key={r.key} data-value={value(r)}>
                  <title>{`${label(r.key)}: ${format(value(r))}`}</title>
                </rect>
                <text x={i * (width / rows.length) + width / rows.length / 2} y={136} text-anchor="middle">
                  {clip(label(r.key))}
                </text>
              </g>
            );
          })}
        </svg>
      )}
    </figure>
  );
}

/** Usage and cost (per day, model, project), and the plan's limits against this month's use. */
export function UsagePage() {
  const [byDay, setByDay] = useState<Grouped | null>(null);
  const [byModel, setByModel] = useState<Grouped | null>(null);
  const [byProject, setByProject] = useState<Grouped | null>(null);
  const [plan, setPlan] = useState<Plan | null>(null);
  const [projectNames, setProjectNames] = useState<Record<string, string>>({});
  const [failure, setFailure] = useState<Failure | null>(null);
  useEffect(() => {
    Promise.all([
      api<Grouped>("/v1/usage?group_by=day").then(setByDay),
      api<Grouped>("/v1/usage?group_by=model").then(setByModel),
      api<Grouped>("/v1/usage?group_by=project").then(setByProject),
      api<Plan>("/v1/plan").then(setPlan),
      api<{ data: { id: string; name: string }[] }>("/v1/projects?limit=100").then((page) => setProjectNames(Object.fromEntries(page.data.map((p) => [p.id, p.name])))),
    ]).catch((err: unknown) => setFailure(failureOf(err)));
  }, []);
  if (failure) return <p role="alert" class="error">{failure.message}</p>;
  if (!byDay || !byModel || !byProject || !plan) return <p class="loading">Loading usage…</p>;
  const meter = (label: string, used: number, limit: number, format = (n: number) => n.toLocaleString()) => (
    <div class="meter">
      <span>
        {label}: {format(used)} of {format(limit)}
      </span>
      <meter min={0} max={limit} value={used} aria-label={label} />
    </div>
  );
  return (
    <section>
      <h1>Usage</h1>
      <p class="meta">
        {byDay.from} to {byDay.to}: <strong data-testid="total-tokens">{tokens(byDay.total).toLocaleString()}</strong> tokens in {byDay.total.calls.toLocaleString()} calls,{" "}
        {dollars(byDay.total.cost_micros)}
      </p>
      <div class="columns">
        <Bars title="Tokens per day" rows={byDay.data} value={tokens} format={(n) => `${n.toLocaleString()} tokens`} />
        <Bars title="Cost per day" rows={byDay.data} value={(t) => t.cost_micros} format={dollars} />
        <Bars title="Tokens per model" rows={byModel.data} value={tokens} format={(n) => `${n.toLocaleString()} tokens`} label={(k) => k.split("/").at(-1) ?? k} />
        <Bars title="Tokens per project" rows={byProject.data} value={tokens} format={(n) => `${n.toLocaleString()} tokens`} label={(k) => projectNames[k] ?? k} />
      </div>
      <h2>{plan.plan.name} plan, this month</h2>
      {meter("Tokens", plan.usage.tokens, plan.limits.monthly_tokens)}
      {meter("Projects", plan.usage.projects, plan.limits.projects)}
      {meter("Seats", plan.usage.seats, plan.limits.seats)}
      {meter("Storage", plan.usage.storage_bytes, plan.limits.storage_bytes, (n) => `${(n / 1024 / 1024).toFixed(1)} MiB`)}
    </section>
  );
}
