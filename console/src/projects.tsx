import { useState } from "preact/hooks";
import { api } from "./api";
import { Field, FormError, Submit } from "./form";
import { Link } from "./nav";
import { submit, useAction, useList } from "./data";

interface Project {
  id: string;
  name: string;
  created_at: string;
}

/** The tenant's projects, and a form to make one. */
export function Projects() {
  const list = useList<Project>("/v1/projects?limit=100");
  const projects = list.items;
  const loadFailure = list.failure;
  const [name, setName] = useState("");
  const { busy, failure, run } = useAction();
  const create = submit(() =>
    run(async () => {
      const made = await api<Project>("/v1/projects", { body: { name } });
      list.setItems([made, ...(projects ?? [])]);
      setName("");
    }),
  );
  return (
    <section>
      <h1>Projects</h1>
      <form class="inline" onSubmit={create} noValidate aria-label="New project">
        <Field label="Project name" name="name" value={name} onInput={setName} failure={failure} required />
        <Submit busy={busy}>Create project</Submit>
      </form>
      <FormError failure={failure && !failure.fields.length ? failure : null} />
      {loadFailure && (
        <p role="alert" class="error">
          {loadFailure.message}
        </p>
      )}
      {projects === null && !loadFailure && <p class="loading">Loading projects…</p>}
      {projects?.length === 0 && <p class="empty">No projects yet. A project holds agents, conversations, knowledge and content: make the first one above.</p>}
      {projects && projects.length > 0 && (
        <ul class="cards" aria-label="Projects">
          {projects.map((p) => (
            <li key={p.id}>
              <Link href={`/projects/${p.id}`}>
                <strong>{p.name}</strong>
              </Link>
              <small>Created {new Date(p.created_at).toLocaleDateString()}</small>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
