import { useState } from "preact/hooks";
import { api, ApiProblem } from "./api";
import type { Post } from "./content";
import { ListState, submit, useAction, useList, useOne, when } from "./data";
import { Field, FormError, Submit } from "./form";
import { Link } from "./nav";

interface Variant {
  channel: string;
  text?: string;
  media?: { artifact_id: string; version: number }[];
  link?: string | null;
}
interface Revision {
  revision: number;
  title: string;
  variants: Variant[];
  author_id: string;
  created_at: string;
}
interface Comment {
  id: string;
  revision: number;
  body: string;
  author: { type: string; id: string };
  resolved_at: string | null;
  created_at: string;
}
interface Review {
  id: string;
  revision: number;
  decision: string;
  reviewer: { type: string; id: string };
  comment: string | null;
  created_at: string;
}
interface ReviewLink {
  id: string;
  name: string;
  expires_at: string;
  revoked_at: string | null;
}
interface Publication {
  channel: string;
  url: string;
  revision: number;
  published_at: string;
}

/**
 * The post editor: its current revision to edit (a save made on an older revision is refused, not
 * lost), the workflow's next steps, revisions, reviews, comments, review links and publications.
 */
export function PostPage({ postId, canWrite, canReview }: { postId: string; canWrite: boolean; canReview: boolean }) {
  const post = useOne<Post & { current: Revision }>(`/v1/posts/${postId}`);
  const p = post.value;
  if (post.failure) return <p role="alert" class="error">{post.failure.message}</p>;
  if (!p) return <p class="loading">Loading post…</p>;
  return (
    <>
      <p class="crumbs">
        <Link href={`/projects/${p.project_id}/content`}>Content</Link> / post
      </p>
      <h1>{p.current.title}</h1>
      <p class="meta">
        <span class={`status ${p.status}`} data-testid="post-status">
          {p.status.replace("_", " ")}
        </span>{" "}
        revision {p.revision}
        {p.approved_revision !== null && ` · approved revision ${p.approved_revision}`}
        {p.scheduled_at && ` · publishes ${when(p.scheduled_at)}`}
        {p.published_at && ` · published ${when(p.published_at)}`}
      </p>
      {p.publish_error && (
        <p role="alert" class="error">
          Publishing failed: {p.publish_error}
        </p>
      )}
      <Workflow post={p} canWrite={canWrite} canReview={canReview} onChange={() => post.reload()} />
      <div class="columns">
        {canWrite ? <Editor key={p.revision} post={p} onSaved={() => post.reload()} /> : <RevisionView revision={p.current} />}
        <Comments postId={postId} revision={p.revision} canResolve={canWrite} />
      </div>
      <div class="columns">
        <Revisions key={p.revision} postId={postId} current={p.revision} />
        <Reviews postId={postId} key={`${p.status}-${p.revision}`} />
        {canWrite && <ReviewLinks postId={postId} />}
        {(p.status === "published" || p.published_at) && <Publications postId={postId} />}
      </div>
    </>
  );
}

/** The steps a post can take from where it is. */
function Workflow({ post, canWrite, canReview, onChange }: { post: Post; canWrite: boolean; canReview: boolean; onChange: () => void }) {
  const action = useAction();
  const [at, setAt] = useState("");
  const [comment, setComment] = useState("");
  const step = (path: string, body: unknown = {}) =>
    action.run(async () => {
      await api(`/v1/posts/${post.id}/${path}`, { body });
      setComment("");
      onChange();
    });
  const s = post.status;
  return (
    <section class="panel" aria-label="Workflow">
      <div class="actions">
        {canWrite && (s === "draft" || s === "changes_requested") && (
          <button type="button" onClick={() => step("submit")} disabled={action.busy}>
            Submit for review
          </button>
        )}
        {canReview && s === "in_review" && (
          <button type="button" onClick={() => step("approve", { revision: post.revision, ...(comment && { comment }) })} disabled={action.busy}>
            Approve revision {post.revision}
          </button>
        )}
        {canWrite && s === "scheduled" && (
          <button type="button" class="secondary" onClick={() => step("unschedule")} disabled={action.busy}>
            Unschedule
          </button>
        )}
        {canWrite && s !== "archived" && s !== "publishing" && (
          <button type="button" class="secondary" onClick={() => confirm("Archive this post? It leaves the board and cannot be published.") && step("archive")} disabled={action.busy}>
            Archive
          </button>
        )}
      </div>
      {canReview && s === "in_review" && (
        <form onSubmit={submit(() => step("request-changes", { revision: post.revision, comment }))} noValidate aria-label="Review">
          <Field id="review-comment" label="Review comment (required to ask for changes)" name="comment" multiline value={comment} onInput={setComment} failure={action.failure} />
          <Submit busy={action.busy}>Ask for changes</Submit>
        </form>
      )}
      {canWrite && (s === "approved" || s === "failed") && (
        <form class="inline" onSubmit={submit(() => step("schedule", { at: at ? new Date(at).toISOString() : "" }))} noValidate aria-label="Schedule">
          <Field id="schedule-at" label="Publish at (your time)" name="at" type="datetime-local" value={at} onInput={setAt} failure={action.failure} required />
          <Submit busy={action.busy}>Schedule</Submit>
        </form>
      )}
      <FormError failure={action.failure} />
    </section>
  );
}

function Editor({ post, onSaved }: { post: Post & { current: Revision }; onSaved: () => void }) {
  const [title, setTitle] = useState(post.current.title);
  const [variants, setVariants] = useState<Variant[]>(post.current.variants);
  const [stale, setStale] = useState(false);
  const action = useAction();
  const edit = (i: number, change: Partial<Variant>) => setVariants(variants.map((v, j) => (j === i ? { ...v, ...change } : v)));
  const save = submit(() =>
    action.run(async () => {
      try {
        await api(`/v1/posts/${post.id}`, { method: "PATCH", body: { title, variants, base_revision: post.revision } });
        onSaved();
      } catch (err) {
        // Someone saved a newer revision meanwhile: this edit stays on the page, with a way to see theirs.
        if (err instanceof ApiProblem && err.status === 409) setStale(true);
        throw err;
      }
    }),
  );
  return (
    <section aria-labelledby="editor-heading">
      <h2 id="editor-heading">Edit revision {post.revision}</h2>
      <form onSubmit={save} noValidate aria-label="Edit post">
        <Field id="edit-title" label="Title" name="title" value={title} onInput={setTitle} failure={action.failure} required />
        {variants.map((v, i) => (
          <fieldset key={i} class="variant">
            <legend>{v.channel || "new channel"}</legend>
            <Field id={`edit-channel-${i}`} label="Channel" name={`variants.${i}.channel`} value={v.channel} onInput={(channel) => edit(i, { channel })} failure={action.failure} required />
            <Field id={`edit-text-${i}`} label={`Text for ${v.channel || "this channel"}`} name={`variants.${i}.text`} multiline value={v.text ?? ""} onInput={(text) => edit(i, { text })} failure={action.failure} hint={`${(v.text ?? "").length} characters`} />
            {variants.length > 1 && (
              <button type="button" class="link" onClick={() => setVariants(variants.filter((_, j) => j !== i))}>
                Remove the {v.channel} version
              </button>
            )}
          </fieldset>
        ))}
        <button type="button" class="secondary" onClick={() => setVariants([...variants, { channel: "", text: "" }])} disabled={variants.length >= 10}>
          Add a channel
        </button>
        <FormError failure={action.failure} />
        {stale && (
          <button type="button" class="secondary" onClick={onSaved}>
            Load the newer revision (your edit here is replaced)
          </button>
        )}
        <Submit busy={action.busy}>Save as revision {post.revision + 1}</Submit>
      </form>
    </section>
  );
}

function RevisionView({ revision }: { revision: Revision }) {
  return (
    <section aria-label={`Revision ${revision.revision}`}>
      {revision.variants.map((v) => (
        <article key={v.channel} class="variant" aria-label={`${v.channel} version`}>
          <h2>{v.channel}</h2>
          <p>{v.text}</p>
        </article>
      ))}
    </section>
  );
}

function Revisions({ postId, current }: { postId: string; current: number }) {
  const list = useList<Revision>(`/v1/posts/${postId}/revisions`);
  const [open, setOpen] = useState<number | null>(null);
  return (
    <section aria-labelledby="revisions-heading">
      <h2 id="revisions-heading">Revisions</h2>
      <ListState items={list.items} failure={list.failure} empty="No revisions." />
      <ol class="rows" aria-label="Revisions">
        {list.items
          ?.slice()
          .reverse()
          .map((r) => (
            <li key={r.revision}>
              <button type="button" class="link" aria-expanded={open === r.revision} onClick={() => setOpen(open === r.revision ? null : r.revision)}>
                Revision {r.revision}
              </button>
              <small class="meta">
                {when(r.created_at)}
                {r.revision === current && " · current"}
              </small>
              {open === r.revision && (
                <div class="attempts">
                  <strong>{r.title}</strong>
                  <RevisionView revision={r} />
                </div>
              )}
            </li>
          ))}
      </ol>
    </section>
  );
}

function Reviews({ postId }: { postId: string }) {
  const list = useList<Review>(`/v1/posts/${postId}/reviews`);
  return (
    <section aria-labelledby="reviews-heading">
      <h2 id="reviews-heading">Reviews</h2>
      <ListState items={list.items} failure={list.failure} empty="No decisions yet." />
      <ul class="rows" aria-label="Reviews">
        {list.items?.map((r) => (
          <li key={r.id}>
            <span class={`status ${r.decision}`}>{r.decision.replace("_", " ")}</span>
            <small class="meta">
              revision {r.revision} · {r.reviewer.type === "guest" ? "guest reviewer" : "member"} · {when(r.created_at)}
            </small>
            {r.comment && <p class="quote">{r.comment}</p>}
          </li>
        ))}
      </ul>
    </section>
  );
}

function Comments({ postId, revision, canResolve }: { postId: string; revision: number; canResolve: boolean }) {
  const list = useList<Comment>(`/v1/posts/${postId}/comments`);
  const [body, setBody] = useState("");
  const action = useAction();
  const add = submit(() =>
    action.run(async () => {
      const made = await api<Comment>(`/v1/posts/${postId}/comments`, { body: { body, revision } });
      list.setItems([...(list.items ?? []), made]);
      setBody("");
    }),
  );
  const resolve = (c: Comment) =>
    action.run(async () => {
      const done = await api<Comment>(`/v1/posts/${postId}/comments/${c.id}/resolve`, { body: {} });
      list.setItems(list.items?.map((x) => (x.id === c.id ? done : x)) ?? null);
    });
  return (
    <section aria-labelledby="comments-heading">
      <h2 id="comments-heading">Comments</h2>
      <ListState items={list.items} failure={list.failure} empty="No comments yet." />
      <ul class="rows" aria-label="Comments">
        {list.items?.map((c) => (
          <li key={c.id} class={c.resolved_at ? "resolved" : undefined}>
            <p class="quote">{c.body}</p>
            <small class="meta">
              {c.author.type === "guest" ? "guest reviewer" : "member"} · revision {c.revision} · {when(c.created_at)}
              {c.resolved_at && " · resolved"}
            </small>
            {canResolve && !c.resolved_at && (
              <button type="button" class="link" onClick={() => resolve(c)} disabled={action.busy}>
                Resolve
              </button>
            )}
          </li>
        ))}
      </ul>
      <form onSubmit={add} noValidate aria-label="Add a comment">
        <Field id="comment-body" label="Comment" name="body" multiline value={body} onInput={setBody} failure={action.failure} required />
        <FormError failure={action.failure} />
        <Submit busy={action.busy}>Comment</Submit>
      </form>
    </section>
  );
}

function ReviewLinks({ postId }: { postId: string }) {
  const list = useList<ReviewLink>(`/v1/posts/${postId}/review-links`);
  const [name, setName] = useState("");
  const [made, setMade] = useState<string | null>(null);
  const action = useAction();
  const create = submit(() =>
    action.run(async () => {
      const link = await api<ReviewLink & { token: string }>(`/v1/posts/${postId}/review-links`, { body: { name } });
      setMade(`${location.origin}/review/${encodeURIComponent(link.token)}`);
      list.setItems([link, ...(list.items ?? [])]);
      setName("");
    }),
  );
  const revoke = (l: ReviewLink) =>
    action.run(async () => {
      await api(`/v1/posts/${postId}/review-links/${l.id}`, { method: "DELETE" });
      await list.reload();
    });
  return (
    <section aria-labelledby="links-heading">
      <h2 id="links-heading">Review links</h2>
      <form onSubmit={create} noValidate aria-label="New review link">
        <Field id="link-name" label="Reviewer's name" name="name" value={name} onInput={setName} failure={action.failure} required hint="A client reviews without an account." />
        <FormError failure={action.failure} />
        <Submit busy={action.busy}>Make a link</Submit>
      </form>
      {made && (
        <div class="secret" role="status">
          <p>Send this link; it is shown only now:</p>
          <input readOnly aria-label="Review link" value={made} onFocus={(e) => (e.target as HTMLInputElement).select()} />
        </div>
      )}
      <ListState items={list.items} failure={list.failure} empty="No review links." />
      <ul class="rows" aria-label="Review links">
        {list.items?.map((l) => (
          <li key={l.id}>
            {l.name}
            <small class="meta">{l.revoked_at ? " · revoked" : ` · until ${when(l.expires_at)}`}</small>
            {!l.revoked_at && (
              <button type="button" class="link" onClick={() => revoke(l)} disabled={action.busy} aria-label={`Revoke the link for ${l.name}`}>
                Revoke
              </button>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}

function Publications({ postId }: { postId: string }) {
  const list = useList<Publication>(`/v1/posts/${postId}/publications`);
  return (
    <section aria-labelledby="publications-heading">
      <h2 id="publications-heading">Published</h2>
      <ListState items={list.items} failure={list.failure} empty="Not published yet." />
      <ul class="rows" aria-label="Publications">
        {list.items?.map((x) => (
          <li key={`${x.channel}-${x.revision}`}>
            <strong>{x.channel}</strong>
            <a href={x.url} rel="noopener noreferrer" target="_blank">
              {x.url}
            </a>
            <small class="meta">
              revision {x.revision} · {when(x.published_at)}
            </small>
          </li>
        ))}
      </ul>
    </section>
  );
}
