import { useEffect, useState } from "preact/hooks";
import { api, ApiProblem } from "./api";
import { type Failure, FormError, failureOf, Submit } from "./form";

interface Review {
  reviewer: { name: string; expires_at: string };
  post: { id: string; title: string; status: string; revision: number };
  revision: { revision: number; title: string; variants: { channel: string; text: string }[] };
  comments: { id: string; body: string; author: { type: string }; created_at: string }[];
}

/**
 * What a review link opens, for a person without an account: the post's current revision, its
 * comments, and approve or ask for changes. The link's token is the only credential.
 */
export function GuestReview({ token }: { token: string }) {
  const [review, setReview] = useState<Review | null>(null);
  const [gone, setGone] = useState<string | null>(null);
  const [comment, setComment] = useState("");
  const [failure, setFailure] = useState<Failure | null>(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<string | null>(null);
  const base = `/v1/review/${encodeURIComponent(token)}`;
  const load = () =>
    api<Review>(base, { auth: false })
      .then(setReview)
      .catch((err: unknown) => setGone(err instanceof ApiProblem ? err.message : "This review link could not be opened."));
  useEffect(() => {
    void load();
  }, [token]);
  const act = async (action: "approve" | "request-changes") => {
    if (!review) return;
    setBusy(true);
    setFailure(null);
    try {
      const post = await api<{ status: string }>(`${base}/${action}`, { body: { revision: review.revision.revision, comment: comment || (action === "approve" ? null : undefined) }, auth: false });
      setDone(action === "approve" ? `Approved. The post is now ${post.status.replace("_", " ")}.` : "Sent back with your comment.");
      setComment("");
      await load();
    } catch (err) {
      setFailure(failureOf(err));
    } finally {
      setBusy(false);
    }
  };
  if (gone) return <main class="narrow"><h1>Review link</h1><p role="alert" class="error">{gone}</p></main>;
  if (!review) return <main class="narrow"><p class="loading">Loading the post…</p></main>;
  return (
    <main class="review">
      <p class="meta">
        Reviewing as {review.reviewer.name} · this link works until {new Date(review.reviewer.expires_at).toLocaleDateString()}
      </p>
      <h1>{review.revision.title}</h1>
      <p class="meta">
        Revision {review.revision.revision} · <span class="status">{review.post.status.replace("_", " ")}</span>
      </p>
      {review.revision.variants.map((v) => (
        <article key={v.channel} class="variant" aria-label={`${v.channel} version`}>
          <h2>{v.channel}</h2>
          <p>{v.text}</p>
        </article>
      ))}
      <h2>Comments</h2>
      {review.comments.length === 0 && <p class="empty">No comments yet.</p>}
      <ul class="rows" aria-label="Comments">
        {review.comments.map((c) => (
          <li key={c.id}>{c.body}</li>
        ))}
      </ul>
      {done && <p role="status">{done}</p>}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void act("approve");
        }}
        aria-label="Your review"
      >
        <div class="field">
          <label for="review-comment">Comment (needed to ask for changes)</label>
          <textarea id="review-comment" rows={3} value={comment} onInput={(e) => setComment((e.target as HTMLTextAreaElement).value)} />
        </div>
        <FormError failure={failure} />
        <div class="actions">
          <Submit busy={busy}>Approve</Submit>
          <button type="button" class="secondary" disabled={busy} onClick={() => act("request-changes")}>
            Ask for changes
          </button>
        </div>
      </form>
    </main>
  );
}
