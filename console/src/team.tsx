import { useState } from "preact/hooks";
import { api } from "./api";
import { ListState, submit, useAction, useList, when } from "./data";
import { Choices, Field, SelectField, FormError, Submit } from "./form";

const ROLES = ["owner", "admin", "editor", "viewer", "client"] as const;
const SCOPES = ["projects:read", "projects:write", "conversations:read", "conversations:write", "agents:read", "agents:write", "prompts:read", "prompts:write", "runs:read", "runs:write", "artifacts:read", "artifacts:write", "knowledge:read", "knowledge:write", "campaigns:read", "campaigns:write", "posts:read", "posts:write", "posts:review", "webhooks:read", "webhooks:write", "members:read", "members:write", "invitations:write", "api_keys:read", "api_keys:write", "audit:read", "usage:read", "compliance:manage"] as const;

interface Member {
  user_id: string;
  email: string;
  name: string;
  role: string;
  projects: string[] | null;
  joined_at: string;
}
interface Invitation {
  id: string;
  email: string;
  role: string;
  projects: string[] | null;
  expires_at: string;
  created_at: string;
}
interface Key {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
}
interface Project {
  id: string;
  name: string;
}

/** Choosing projects for a client or a limited member (a client must have at least one). */
function ProjectPicker({ projects, chosen, onChange, legend }: { projects: Project[]; chosen: string[]; onChange: (ids: string[]) => void; legend: string }) {
  return <Choices legend={legend} options={projects.map((p) => [p.id, p.name] as const)} chosen={chosen} onChange={onChange} empty="No projects yet." />;
}

/** The tenant's people: members and their roles, invitations, and API keys. */
export function TeamPage({ me }: { me: { user: { id: string }; permissions: string[] } }) {
  const projects = useList<Project>("/v1/projects?limit=100");
  const names = Object.fromEntries((projects.items ?? []).map((p) => [p.id, p.name]));
  const can = (p: string) => me.permissions.includes(p);
  return (
    <>
      <h1>Team</h1>
      <div class="columns">
        <Members meId={me.user.id} canWrite={can("members:write")} projects={projects.items ?? []} />
        {can("invitations:write") && <Invitations projects={projects.items ?? []} names={names} />}
      </div>
      {can("api_keys:read") && <Keys canWrite={can("api_keys:write")} />}
    </>
  );
}

function Members({ meId, canWrite, projects }: { meId: string; canWrite: boolean; projects: Project[] }) {
  const members = useList<Member>("/v1/members?limit=100");
  const names = Object.fromEntries(projects.map((p) => [p.id, p.name]));
  const action = useAction();
  const setRole = (m: Member, role: string) =>
    action.run(async () => {
      // Owners and admins reach every project, so their list goes; a client must have one (the API
      // says so, naming `projects`, until one is chosen with "Projects").
      const projects = ["owner", "admin"].includes(role) ? null : m.projects;
      const changed = await api<Member>(`/v1/members/${m.user_id}`, { method: "PATCH", body: { role, projects } });
      members.setItems(members.items?.map((x) => (x.user_id === m.user_id ? changed : x)) ?? null);
    });
  const [picking, setPicking] = useState<string | null>(null);
  const [chosen, setChosen] = useState<string[] | null>(null);
  const limit = (m: Member) =>
    action.run(async () => {
      const ids = chosen ?? m.projects ?? [];
      // None chosen: every project (a client's empty list goes as sent, for the API to refuse).
      const changed = await api<Member>(`/v1/members/${m.user_id}`, { method: "PATCH", body: { projects: ids.length > 0 || m.role === "client" ? ids : null } });
      setPicking(null);
      setChosen(null);
      members.setItems(members.items?.map((x) => (x.user_id === m.user_id ? changed : x)) ?? null);
    });
  const remove = (m: Member) => {
    if (!confirm(`Remove ${m.name} (${m.email}) from this workspace? Their sessions and keys here stop working at once.`)) return;
    void action.run(async () => {
      await api(`/v1/members/${m.user_id}`, { method: "DELETE" });
      members.setItems(members.items?.filter((x) => x.user_id !== m.user_id) ?? null);
    });
  };
  return (
    <section aria-labelledby="members-heading">
      <h2 id="members-heading">Members</h2>
      <FormError failure={action.failure} />
      <ListState items={members.items} failure={members.failure} empty="No members." />
      <ul class="rows" aria-label="Members">
        {members.items?.map((m) => (
          <li key={m.user_id} class="member">
            <span>
              <strong>{m.name}</strong> <small>{m.email}</small>
              {m.projects && <small class="meta"> · {m.projects.map((id) => names[id] ?? id).join(", ")}</small>}
            </span>
            {canWrite && m.user_id !== meId ? (
              <>
                <select aria-label={`Role of ${m.name}`} value={m.role} disabled={action.busy} onChange={(e) => setRole(m, (e.target as HTMLSelectElement).value)}>
                  {ROLES.map((r) => (
                    <option key={r}>{r}</option>
                  ))}
                </select>
                {!["owner", "admin"].includes(m.role) && (
                  <button type="button" class="link" aria-expanded={picking === m.user_id} onClick={() => {
                      setChosen(null);
                      setPicking(picking === m.user_id ? null : m.user_id);
                    }} aria-label={`Projects of ${m.name}`}>
                    Projects
                  </button>
                )}
                <button type="button" class="secondary" onClick={() => remove(m)} disabled={action.busy} aria-label={`Remove ${m.name}`}>
                  Remove
                </button>
                {picking === m.user_id && (
                  <form class="attempts" onSubmit={submit(() => limit(m))} noValidate aria-label={`Projects ${m.name} reaches`}>
                    <ProjectPicker projects={projects} chosen={chosen ?? m.projects ?? []} onChange={setChosen} legend={m.role === "client" ? "Projects they review" : "Limit to projects (none: every project)"} />
                    <Submit busy={action.busy}>Save projects</Submit>
                  </form>
                )}
              </>
            ) : (
              <span class="status">{m.role}</span>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}

function Invitations({ projects, names }: { projects: Project[]; names: Record<string, string> }) {
  const list = useList<Invitation>("/v1/invitations?limit=100");
  const [email, setEmail] = useState("");
  const [role, setRole] = useState("editor");
  const [chosen, setChosen] = useState<string[]>([]);
  const [link, setLink] = useState<{ email: string; url: string; expires: string } | null>(null);
  const action = useAction();
  const limited = role === "client" || ((role === "editor" || role === "viewer") && chosen.length > 0);
  const invite = submit(() =>
    action.run(async () => {
      const made = await api<Invitation & { token: string }>("/v1/invitations", { body: { email, role, ...(limited && { projects: chosen }) } });
      // The token is shown once: the link is what the person needs.
      setLink({ email: made.email, expires: made.expires_at, url: `${location.origin}/invite/${encodeURIComponent(made.token)}` });
      list.setItems([made, ...(list.items ?? [])]);
      setEmail("");
    }),
  );
  const revoke = (inv: Invitation) =>
    action.run(async () => {
      await api(`/v1/invitations/${inv.id}`, { method: "DELETE" });
      list.setItems(list.items?.filter((x) => x.id !== inv.id) ?? null);
    });
  return (
    <section aria-labelledby="invitations-heading">
      <h2 id="invitations-heading">Invitations</h2>
      <form onSubmit={invite} noValidate aria-label="Invite someone">
        <Field id="invite-email" label="Email" name="email" type="email" value={email} onInput={setEmail} failure={action.failure} required />
        <SelectField id="invite-role" label="Role" value={role} onChange={setRole} options={ROLES} />
        {!["owner", "admin"].includes(role) && <ProjectPicker projects={projects} chosen={chosen} onChange={setChosen} legend={role === "client" ? "Projects they review (at least one)" : "Limit to projects (none: every project)"} />}
        <FormError failure={action.failure} />
        <Submit busy={action.busy}>Invite</Submit>
      </form>
      {link && (
        <div class="secret" role="status">
          <p>
            Send this link to {link.email}. It is shown only now, and works once until {when(link.expires)}:
          </p>
          <input readOnly aria-label="Invitation link" value={link.url} onFocus={(e) => (e.target as HTMLInputElement).select()} />
        </div>
      )}
      <ListState items={list.items} failure={list.failure} empty="No open invitations." />
      <ul class="rows" aria-label="Open invitations">
        {list.items?.map((inv) => (
          <li key={inv.id}>
            <span>
              {inv.email} <small class="status">{inv.role}</small>
              {inv.projects && <small class="meta"> · {inv.projects.map((id) => names[id] ?? id).join(", ")}</small>}
              <small class="meta"> · expires {when(inv.expires_at)}</small>
            </span>
            <button type="button" class="link" onClick={() => revoke(inv)} aria-label={`Revoke the invitation for ${inv.email}`}>
              Revoke
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

function Keys({ canWrite }: { canWrite: boolean }) {
  const list = useList<Key>("/v1/api-keys?limit=100");
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<string[]>(["projects:read"]);
  const [secret, setSecret] = useState<{ name: string; key: string } | null>(null);
  const action = useAction();
  const create = submit(() =>
    action.run(async () => {
      const made = await api<Key & { key: string }>("/v1/api-keys", { body: { name, scopes } });
      setSecret({ name: made.name, key: made.key });
      list.setItems([made, ...(list.items ?? [])]);
      setName("");
    }),
  );
  const revoke = (k: Key) => {
    if (!confirm(`Revoke the key "${k.name}"? Requests that use it are refused at once.`)) return;
    void action.run(async () => {
      await api(`/v1/api-keys/${k.id}`, { method: "DELETE" });
      list.setItems(list.items?.filter((x) => x.id !== k.id) ?? null);
    });
  };
  return (
    <section aria-labelledby="keys-heading" class="panel">
      <h2 id="keys-heading">API keys</h2>
      {canWrite && (
        <form onSubmit={create} noValidate aria-label="Create an API key">
          <Field id="key-name" label="Key name" name="name" value={name} onInput={setName} failure={action.failure} required />
          <Choices legend="Scopes (a key never reaches more than you do)" options={SCOPES.map((x) => [x, x] as const)} chosen={scopes} onChange={setScopes} wide />
          <FormError failure={action.failure} />
          <Submit busy={action.busy}>Create key</Submit>
        </form>
      )}
      {secret && (
        <div class="secret" role="status">
          <p>The key "{secret.name}", shown only now — copy it somewhere safe:</p>
          <input readOnly aria-label="New API key" value={secret.key} onFocus={(e) => (e.target as HTMLInputElement).select()} />
        </div>
      )}
      <ListState items={list.items} failure={list.failure} empty="No API keys yet." />
      <ul class="rows" aria-label="API keys">
        {list.items?.map((k) => (
          <li key={k.id}>
            <span>
              <strong>{k.name}</strong> <code>{k.prefix}…</code>
              <small class="meta">
                {" "}
                · {k.scopes.join(", ")} · last used {when(k.last_used_at)}
                {k.expires_at && ` · expires ${when(k.expires_at)}`}
              </small>
            </span>
            {canWrite && (
              <button type="button" class="link" onClick={() => revoke(k)} aria-label={`Revoke the key ${k.name}`}>
                Revoke
              </button>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}
