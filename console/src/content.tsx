import { useState } from "preact/hooks";
import { api, ApiProblem } from "./api";
import { ListState, submit, useAction, useCan, useList, useOne, when } from "./data";
import { Field, SelectField, FormError, Submit } from "./form";
import { Link, navigate } from "./nav";

export interface Post {
  id: string;
  project_id: string;
  campaign_id: string | null;
  title: string;
  status: string;
  revision: number;
  approved_revision: number | null;
  scheduled_at: string | null;
  published_at: string | null;
  publish_error: string | null;
  updated_at: string;
}
interface Campaign {
  id: string;
  name: string;
  goal: string | null;
  status: string;
  starts_on: string | null;
  ends_on: string | null;
  channels: string[];
}
interface Account {
  id: string;
  channel: string;
  name: string;
}

/** The approval board's columns, in the order a post moves through them. */
const COLUMNS: { status: string; label: string }[] = [
  { status: "draft", label: "Draft" },
  { status: "in_review", label: "In review" },
  { status: "changes_requested", label: "Changes requested" },
  { status: "approved", label: "Approved" },
  { status: "scheduled", label: "Scheduled" },
  { status: "published", label: "Published" },
];

/** A project's name (what it is in the path to it) and its tabs: overview, content, calendar, knowledge. */
export function ProjectHeader({ projectId, here }: { projectId: string; here: "overview" | "content" | "calendar" | "knowledge" }) {
  const project = useOne<{ name: string }>(`/v1/projects/${projectId}`);
  const can = useCan();
  // A tab shows when the person may read what it holds (a client reviews content and nothing else).
  const tabs = (
    [
      ["overview", "Overview", `/projects/${projectId}`, "projects:read"],
      ["content", "Content", `/projects/${projectId}/content`, "posts:read"],
      ["calendar", "Calendar", `/projects/${projectId}/calendar`, "posts:read"],
      ["knowledge", "Knowledge", `/projects/${projectId}/knowledge`, "knowledge:read"],
    ] as const
  ).filter(([, , , needs]) => can(needs));
  if (project.failure) return <p role="alert" class="error">{project.failure.message}</p>;
  return (
    <>
      <p class="crumbs">
        <Link href="/projects">Projects</Link> / {here}
      </p>
      <h1>{project.value?.name ?? "…"}</h1>
      <nav class="tabs" aria-label="Project">
        {tabs.map(([key, label, href]) => (
          <Link key={key} href={href} aria-current={key === here ? "page" : undefined}>
            {label}
          </Link>
        ))}
      </nav>
    </>
  );
}

/** Campaigns, channels, a new post, and the approval board of the project's posts. */
export function ContentPage({ projectId, canWrite, canReview }: { projectId: string; canWrite: boolean; canReview: boolean }) {
  const posts = useList<Post>(`/v1/posts?project_id=${projectId}&limit=100`);
  const campaigns = useList<Campaign>(`/v1/campaigns?project_id=${projectId}&limit=100`);
  const names = Object.fromEntries((campaigns.items ?? []).map((c) => [c.id, c.name]));
  return (
    <>
      <ProjectHeader projectId={projectId} here="content" />
      <div class="columns">
        {canWrite && <NewPost projectId={projectId} campaigns={campaigns.items ?? []} />}
        <Campaigns projectId={projectId} list={campaigns} canWrite={canWrite} />
        {canWrite && <Channels projectId={projectId} />}
      </div>
      <ApprovalPolicy projectId={projectId} />
      <h2 class="spaced">Approval board</h2>
      <ListState items={posts.items} failure={posts.failure} empty="No posts yet: write the first one above." />
      {posts.items && posts.items.length > 0 && (
        <div class="board">
          {COLUMNS.map((col) => {
            const here = posts.items!.filter((p) => p.status === col.status || (col.status === "published" && p.status === "publishing") || (col.status === "scheduled" && p.status === "failed"));
            return (
              <section key={col.status} class="lane" aria-label={`${col.label} (${here.length})`}>
                <h3>
                  {col.label} <small>{here.length}</small>
                </h3>
                {here.length === 0 && <p class="empty">None</p>}
                <ul class="rows">
                  {here.map((p) => (
                    <BoardCard key={p.id} post={p} campaign={p.campaign_id ? names[p.campaign_id] : undefined} canReview={canReview} onChange={(next) => posts.setItems(posts.items!.map((x) => (x.id === next.id ? next : x)))} />
                  ))}
                </ul>
              </section>
            );
          })}
        </div>
      )}
    </>
  );
}

/** Whether posts here need a reviewer's approval before they can be scheduled. */
function ApprovalPolicy({ projectId }: { projectId: string }) {
  const policy = useOne<{ mode: string; levels: { name: string }[] }>(`/v1/projects/${projectId}/approval-policy`);
  const action = useAction();
  const mode = policy.value?.mode;
  const change = (next: string) =>
    action.run(async () => {
      policy.setValue(await api(`/v1/projects/${projectId}/approval-policy`, { method: "PUT", body: { mode: next } }));
    });
  return (
    <div class="field inline-field spaced">
      <label for="approval-mode">Approval</label>
      {mode === "multi_level" ? (
        <span>
          in {policy.value!.levels.length} levels: {policy.value!.levels.map((l) => l.name).join(" → ")}
        </span>
      ) : (
        <select id="approval-mode" value={mode ?? ""} disabled={!mode || action.busy} onChange={(e) => change((e.target as HTMLSelectElement).value)}>
          <option value="none">not needed: a submitted post is approved</option>
          <option value="optional">optional: reviewers may weigh in</option>
          <option value="required">required before scheduling</option>
        </select>
      )}
      <FormError failure={action.failure ?? policy.failure} />
    </div>
  );
}

/** A post on the board; one in review can be approved or sent back from here. */
function BoardCard({ post, campaign, canReview, onChange }: { post: Post; campaign?: string; canReview: boolean; onChange: (p: Post) => void }) {
  const [asking, setAsking] = useState(false);
  const [comment, setComment] = useState("");
  const action = useAction();
  const decide = (path: "approve" | "request-changes") =>
    action.run(async () => {
      onChange(await api<Post>(`/v1/posts/${post.id}/${path}`, { body: { revision: post.revision, ...(comment && { comment }) } }));
      setAsking(false);
      setComment("");
    });
  return (
    <li class="card">
      <Link href={`/posts/${post.id}`}>
        <strong>{post.title}</strong>
      </Link>
      <small class="meta">
        revision {post.revision}
        {campaign && ` · ${campaign}`}
        {post.scheduled_at && ` · ${when(post.scheduled_at)}`}
        {post.status === "failed" && " · publishing failed"}
      </small>
      {canReview && post.status === "in_review" && (
        <div class="actions">
          <button type="button" onClick={() => decide("approve")} disabled={action.busy} aria-label={`Approve ${post.title}`}>
            Approve
          </button>
          <button type="button" class="secondary" onClick={() => setAsking(!asking)} aria-expanded={asking} aria-label={`Ask for changes to ${post.title}`}>
            Ask for changes
          </button>
        </div>
      )}
      {asking && (
        <form onSubmit={submit(() => decide("request-changes"))} noValidate aria-label={`Changes to ${post.title}`}>
          <Field id={`changes-${post.id}`} label="What should change?" name="comment" multiline value={comment} onInput={setComment} failure={action.failure} required />
          <Submit busy={action.busy}>Send back</Submit>
        </form>
      )}
      <FormError failure={action.failure} />
    </li>
  );
}

function NewPost({ projectId, campaigns }: { projectId: string; campaigns: Campaign[] }) {
  const [title, setTitle] = useState("");
  const [channel, setChannel] = useState("linkedin");
  const [text, setText] = useState("");
  const [campaignId, setCampaignId] = useState("");
  const action = useAction();
  const create = submit(() =>
    action.run(async () => {
      const made = await api<Post>("/v1/posts", { body: { project_id: projectId, ...(campaignId && { campaign_id: campaignId }), title, variants: [{ channel, text }] } });
      navigate(`/posts/${made.id}`);
    }),
  );
  return (
    <section aria-labelledby="new-post-heading">
      <h2 id="new-post-heading">New post</h2>
      <form onSubmit={create} noValidate aria-label="New post">
        <Field id="post-title" label="Title" name="title" value={title} onInput={setTitle} failure={action.failure} required />
        <Field id="post-channel" label="Channel" name="variants.0.channel" value={channel} onInput={setChannel} failure={action.failure} required hint="linkedin, instagram, x… (more in the editor)" />
        <Field id="post-text" label="Text" name="variants.0.text" multiline value={text} onInput={setText} failure={action.failure} />
        <SelectField id="post-campaign" label="Campaign" value={campaignId} onChange={setCampaignId} options={[["", "none"], ...campaigns.map((c) => [c.id, c.name] as const)]} />
        <FormError failure={action.failure} />
        <Submit busy={action.busy}>Write post</Submit>
      </form>
    </section>
  );
}

function Campaigns({ projectId, list, canWrite }: { projectId: string; list: ReturnType<typeof useList<Campaign>>; canWrite: boolean }) {
  const [name, setName] = useState("");
  const [goal, setGoal] = useState("");
  const [starts, setStarts] = useState("");
  const [ends, setEnds] = useState("");
  const action = useAction();
  const create = submit(() =>
    action.run(async () => {
      const made = await api<Campaign>("/v1/campaigns", { body: { project_id: projectId, name, ...(goal && { goal }), ...(starts && { starts_on: starts }), ...(ends && { ends_on: ends }) } });
      list.setItems([made, ...(list.items ?? [])]);
      setName("");
      setGoal("");
    }),
  );
  const move = (c: Campaign, to: string) =>
    action.run(async () => {
      const next = await api<Campaign>(`/v1/campaigns/${c.id}/${to}`, { body: {} });
      list.setItems(list.items?.map((x) => (x.id === c.id ? next : x)) ?? null);
    });
  const NEXT: Record<string, string[]> = { draft: ["activate"], active: ["pause", "complete"], paused: ["activate", "complete"], completed: ["archive"] };
  return (
    <section aria-labelledby="campaigns-heading">
      <h2 id="campaigns-heading">Campaigns</h2>
      {canWrite && (
        <form onSubmit={create} noValidate aria-label="New campaign">
          <Field id="campaign-name" label="Campaign name" name="name" value={name} onInput={setName} failure={action.failure} required />
          <Field id="campaign-goal" label="Goal" name="goal" value={goal} onInput={setGoal} failure={action.failure} />
          <div class="pair">
            <Field id="campaign-starts" label="Starts" name="starts_on" type="date" value={starts} onInput={setStarts} failure={action.failure} />
            <Field id="campaign-ends" label="Ends" name="ends_on" type="date" value={ends} onInput={setEnds} failure={action.failure} />
          </div>
          <FormError failure={action.failure} />
          <Submit busy={action.busy}>Add campaign</Submit>
        </form>
      )}
      <ListState items={list.items} failure={list.failure} empty="No campaigns yet." />
      <ul class="rows" aria-label="Campaigns">
        {list.items?.map((c) => (
          <li key={c.id}>
            <strong>{c.name}</strong> <span class={`status ${c.status}`}>{c.status}</span>
            <small class="meta">
              {c.starts_on ?? "…"} – {c.ends_on ?? "…"}
              {c.goal && ` · ${c.goal}`}
            </small>
            {canWrite &&
              (NEXT[c.status] ?? []).map((to) => (
                <button key={to} type="button" class="link" onClick={() => move(c, to)} disabled={action.busy} aria-label={`${to} ${c.name}`}>
                  {to}
                </button>
              ))}
          </li>
        ))}
      </ul>
    </section>
  );
}

/** Connected accounts: publishing goes to them (locally, each account is a sandbox that needs no credentials). */
function Channels({ projectId }: { projectId: string }) {
  const list = useList<Account>(`/v1/projects/${projectId}/channels`);
  const [channel, setChannel] = useState("");
  const [name, setName] = useState("");
  const [credentials, setCredentials] = useState("{}");
  const action = useAction();
  const connect = submit(() =>
    action.run(async () => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(credentials);
      } catch {
        throw new ApiProblem(400, "INVALID_JSON", "The credentials are not JSON.", [{ field: "credentials", message: "must be a JSON object, e.g. {}" }]);
      }
      const made = await api<Account>(`/v1/projects/${projectId}/channels`, { body: { channel, name, credentials: parsed } });
      list.setItems([...(list.items ?? []), made]);
      setChannel("");
      setName("");
    }),
  );
  return (
    <section aria-labelledby="channels-heading">
      <h2 id="channels-heading">Channels</h2>
      <form onSubmit={connect} noValidate aria-label="Connect a channel">
        <Field id="channel-channel" label="Channel" name="channel" value={channel} onInput={setChannel} failure={action.failure} required hint="e.g. linkedin" />
        <Field id="channel-name" label="Account name" name="name" value={name} onInput={setName} failure={action.failure} required />
        <Field id="channel-credentials" label="Credentials (JSON)" name="credentials" multiline value={credentials} onInput={setCredentials} failure={action.failure} hint="Stored encrypted and never shown again." />
        <FormError failure={action.failure} />
        <Submit busy={action.busy}>Connect</Submit>
      </form>
      <ListState items={list.items} failure={list.failure} empty="No channels connected: posts can be written and approved, not published." />
      <ul class="rows" aria-label="Channels">
        {list.items?.map((a) => (
          <li key={a.id}>
            <strong>{a.channel}</strong> <small class="meta">{a.name}</small>
          </li>
        ))}
      </ul>
    </section>
  );
}

const dayKey = (d: Date) => `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;

/**
 * The content calendar: a month of days in the viewer's own time zone (Monday first), each with the
 * posts scheduled or published on it; approved posts waiting for a date are listed beside it.
 */
export function CalendarPage({ projectId }: { projectId: string }) {
  const posts = useList<Post>(`/v1/posts?project_id=${projectId}&limit=100`);
  const [month, setMonth] = useState(() => {
    const now = new Date();
    return new Date(now.getFullYear(), now.getMonth(), 1);
  });
  const lead = (month.getDay() + 6) % 7;
  const length = new Date(month.getFullYear(), month.getMonth() + 1, 0).getDate();
  // Whole weeks from the Monday before the 1st to the Sunday after the last day.
  const days = Array.from({ length: Math.ceil((lead + length) / 7) * 7 }, (_, i) => new Date(month.getFullYear(), month.getMonth(), 1 - lead + i));
  const moment = (p: Post) => new Date(p.published_at ?? p.scheduled_at!);
  const dated = (posts.items ?? []).filter((p) => p.scheduled_at || p.published_at);
  const on = (d: Date) => dated.filter((p) => dayKey(moment(p)) === dayKey(d));
  const waiting = (posts.items ?? []).filter((p) => p.status === "approved");
  const label = month.toLocaleDateString(undefined, { month: "long", year: "numeric" });
  const shift = (n: number) => setMonth(new Date(month.getFullYear(), month.getMonth() + n, 1));
  return (
    <>
      <ProjectHeader projectId={projectId} here="calendar" />
      <div class="inline-field">
        <button type="button" class="secondary" onClick={() => shift(-1)} aria-label="Previous month">
          ←
        </button>
        <h2 aria-live="polite" class="month">
          {label}
        </h2>
        <button type="button" class="secondary" onClick={() => shift(1)} aria-label="Next month">
          →
        </button>
      </div>
      <ListState items={posts.items} failure={posts.failure} empty="No posts yet." />
      {posts.items && !days.some((d) => d.getMonth() === month.getMonth() && on(d).length > 0) && <p class="empty">Nothing scheduled or published in {label}.</p>}
      <ol class="calendar" aria-label={`Posts in ${label}`}>
        {days.map((d) => {
          const here = on(d);
          const outside = d.getMonth() !== month.getMonth();
          return (
            <li key={d.getTime()} class={`${outside ? "outside" : ""} ${here.length ? "busy" : ""}`} aria-label={`${d.toLocaleDateString(undefined, { weekday: "long", day: "numeric", month: "long" })}${here.length ? `, ${here.length} post${here.length > 1 ? "s" : ""}` : ""}`}>
              <span class="date">{d.getDate()}</span>
              {here.map((p) => (
                <Link key={p.id} href={`/posts/${p.id}`} class={`chip ${p.status}`}>
                  {moment(p).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" })} {p.title}
                </Link>
              ))}
            </li>
          );
        })}
      </ol>
      <h2 class="spaced">Approved, waiting for a date</h2>
      {waiting.length === 0 ? (
        <p class="empty">Nothing waiting.</p>
      ) : (
        <ul class="rows" aria-label="Waiting for a date">
          {waiting.map((p) => (
            <li key={p.id}>
              <Link href={`/posts/${p.id}`}>{p.title}</Link>
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
