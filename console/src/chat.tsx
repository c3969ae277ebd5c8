import { useEffect, useRef, useState } from "preact/hooks";
import { api, refresh, session } from "./api";
import { Link } from "./nav";

interface Message {
  id: string;
  seq: number;
  role: "user" | "assistant";
  content: string;
  author_id: string | null;
  status: string;
}
interface Participant {
  user_id: string;
  connections: number;
}
type Frame =
  | { type: "ready"; last_seq: number; participants: Participant[] }
  | { type: "message"; message: Message }
  | { type: "delta"; reply_id: string; text: string }
  | { type: "done"; reply_id: string; message: Message }
  | { type: "presence"; participants: Participant[] }
  | { type: "typing"; user_id: string }
  | { type: "error"; code: string; message: string; reply_id?: string };

type Connection = "connecting" | "open" | "reconnecting" | "closed";

/**
 * A live conversation over its WebSocket: history, messages from everyone as they are posted, the
 * assistant's reply streamed word by word (cancel stops it), who is here, who is typing. A dropped
 * connection reconnects and resumes after the last message it had.
 */
export function ChatPage({ projectId, conversationId }: { projectId: string; conversationId: string }) {
  const [messages, setMessages] = useState<Message[]>([]);
  const [replies, setReplies] = useState<Record<string, string>>({});
  const [participants, setParticipants] = useState<Participant[]>([]);
  const [typing, setTyping] = useState<string | null>(null);
  const [state, setState] = useState<Connection>("connecting");
  const [problem, setProblem] = useState<string | null>(null);
  const [draft, setDraft] = useState("");
  const [askReply, setAskReply] = useState(true);
  const [title, setTitle] = useState("Conversation");
  const socket = useRef<WebSocket | null>(null);
  const lastSeq = useRef(0);
  const lastTyping = useRef(0);
  const me = session.get()?.user.id;

  useEffect(() => {
    api<{ title: string | null }>(`/v1/conversations/${conversationId}`)
      .then((c) => setTitle(c.title || "Untitled conversation"))
      .catch(() => {});
    let stopped = false;
    let attempt = 0;
    const add = (m: Message) => {
      lastSeq.current = Math.max(lastSeq.current, m.seq);
      setMessages((list) => (list.some((x) => x.id === m.id) ? list : [...list, m].sort((a, b) => a.seq - b.seq)));
    };
    const open = () => {
      const token = session.get()?.accessToken ?? "";
      const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/conversations/${conversationId}/connect`, ["tessera.v1", `bearer.${token}`]);
      socket.current = ws;
      ws.onopen = () => {
        attempt = 0;
        setState("open");
        ws.send(JSON.stringify({ type: "resume", after_seq: lastSeq.current }));
      };
      ws.onmessage = (e) => {
        const f = JSON.parse(e.data as string) as Frame;
        if (f.type === "ready") setParticipants(f.participants);
        else if (f.type === "presence") setParticipants(f.participants);
        else if (f.type === "message") add(f.message);
        else if (f.type === "delta") setReplies((r) => ({ ...r, [f.reply_id]: (r[f.reply_id] ?? "") + f.text }));
        else if (f.type === "done") {
          add(f.message);
          setReplies(({ [f.reply_id]: _, ...rest }) => rest);
        } else if (f.type === "typing") {
          setTyping(f.user_id);
          setTimeout(() => setTyping(null), 3000);
        } else if (f.type === "error") setProblem(f.message);
      };
      ws.onclose = async (e) => {
        if (stopped) return;
        if (e.code === 4403 || e.code === 4404) {
          setState("closed");
          setProblem(e.code === 4404 ? "This conversation was deleted." : "This workspace is suspended.");
          return;
        }
        setState("reconnecting");
        // The token may have expired (4401): a fresh one, then the same room, resuming after the last message held.
        if (e.code === 4401) await refresh();
        attempt++;
        setTimeout(() => !stopped && open(), Math.min(10_000, 250 * 2 ** attempt));
      };
    };
    open();
    return () => {
      stopped = true;
      socket.current?.close();
    };
  }, [conversationId]);

  const send = (e: Event) => {
    e.preventDefault();
    const content = draft.trim();
    if (!content || socket.current?.readyState !== WebSocket.OPEN) return;
    setProblem(null);
    socket.current.send(JSON.stringify({ type: "message", content, reply: askReply, client_id: crypto.randomUUID() }));
    setDraft("");
  };
  const onInput = (value: string) => {
    setDraft(value);
    if (Date.now() - lastTyping.current > 2000 && socket.current?.readyState === WebSocket.OPEN) {
      lastTyping.current = Date.now();
      socket.current.send(JSON.stringify({ type: "typing" }));
    }
  };
  const others = participants.filter((p) => p.user_id !== me).length;
  return (
    <section class="chat">
      <p class="crumbs">
        <Link href={`/projects/${projectId}`}>Project</Link> / {title}
      </p>
      <h1>{title}</h1>
      <p class="meta" aria-live="polite">
        <span class={`dot ${state}`} /> {state === "open" ? "Live" : state === "closed" ? "Closed" : state === "connecting" ? "Connecting…" : "Reconnecting…"}
        {" · "}
        {others === 0 ? "only you here" : `${others} other ${others === 1 ? "person" : "people"} here`}
      </p>
      <ol class="messages" aria-label="Messages" aria-live="polite">
        {messages.map((m) => (
          <li key={m.id} class={`message ${m.role}${m.author_id === me ? " mine" : ""}`}>
            <span class="who">{m.role === "assistant" ? "Assistant" : m.author_id === me ? "You" : "Teammate"}</span>
            <p>{m.content}</p>
            {m.status !== "complete" && <small class="error">{m.status}</small>}
          </li>
        ))}
        {Object.entries(replies).map(([id, text]) => (
          <li key={id} class="message assistant streaming" data-reply={id}>
            <span class="who">Assistant</span>
            <p>{text || "…"}</p>
            <button type="button" class="link" onClick={() => socket.current?.send(JSON.stringify({ type: "cancel", reply_id: id }))}>
              Stop
            </button>
          </li>
        ))}
      </ol>
      {typing && typing !== me && <p class="meta">Someone is typing…</p>}
      {problem && (
        <p role="alert" class="error">
          {problem}
        </p>
      )}
      <form class="composer" onSubmit={send} aria-label="Send a message">
        <label for="composer-text" class="visually-hidden">
          Message
        </label>
        <textarea
          id="composer-text"
          rows={2}
          value={draft}
          placeholder="Write a message"
          onInput={(e) => onInput((e.target as HTMLTextAreaElement).value)}
          onKeyDown={(e) => {
            if (e.key === "Enter" && !e.shiftKey) send(e);
          }}
        />
        <label class="check">
          <input type="checkbox" checked={askReply} onChange={(e) => setAskReply((e.target as HTMLInputElement).checked)} /> Assistant replies
        </label>
        <button type="submit" disabled={state !== "open"}>
          Send
        </button>
      </form>
    </section>
  );
}
