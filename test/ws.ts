import { SELF } from "cloudflare:test";
import { expect } from "vitest";

// biome-ignore lint: frames are checked field by field
type Frame = { type: string } & Record<string, any>;

/** A connected test client: every frame it received, and a way to wait for the next matching one. */
export interface TestSocket {
  ws: WebSocket;
  frames: Frame[];
  protocol: string | null;
  /** Resolves with the first frame (from `from` on) of this type that passes `where`. */
  next(type: string, where?: (f: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
  send(frame: unknown): void;
  close(): void;
  /** Resolves when the server closes the socket, with its code and reason. */
  closed: Promise<{ code: number; reason: string }>;
}

/** Opens a WebSocket to a conversation the way a server client would (or a browser, with `via`). */
export async function connect(
  url: string,
  token: string | undefined,
  via: "header" | "protocol" | "query" = "header",
): Promise<{ status: number; socket?: TestSocket; body?: unknown }> {
  const headers: Record<string, string> = { upgrade: "websocket" };
  let target = url;
  if (token && via === "header") headers.authorization = `Bearer ${token}`;
  if (token && via === "protocol") headers["sec-websocket-protocol"] = `tessera.v1, bearer.${token}`;
  if (token && via === "query") target = `${url}?access_token=${encodeURIComponent(token)}`;
  const res = await SELF.fetch(target, { headers });
  if (res.status !== 101 || !res.webSocket) return { status: res.status, body: await res.json().catch(() => undefined) };
  const ws = res.webSocket;
  const frames: Frame[] = [];
  const waiters = new Set<() => void>();
  ws.addEventListener("message", (e) => {
    frames.push(JSON.parse(e.data as string) as Frame);
    for (const w of waiters) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason })));
  ws.accept();
  let cursor = 0;
  const socket: TestSocket = {
    ws,
    frames,
    protocol: res.headers.get("sec-websocket-protocol"),
    next(type, where = () => true, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          for (let i = cursor; i < frames.length; i++) {
            const f = frames[i]!;
            if (f.type === type && where(f)) {
              cursor = i + 1;
              waiters.delete(check);
              clearTimeout(timer);
              resolve(f);
              return;
            }
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no ${type} frame within ${timeoutMs} ms; got ${JSON.stringify(frames.slice(cursor))}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    send: (frame) => ws.send(typeof frame === "string" ? frame : JSON.stringify(frame)),
    close: () => ws.close(1000, "done"),
    closed,
  };
  return { status: 101, socket };
}

/** Connects and expects success. */
export async function open(url: string, token: string, via: "header" | "protocol" | "query" = "header"): Promise<TestSocket> {
  const res = await connect(url, token, via);
  expect(res.status, JSON.stringify(res.body)).toBe(101);
  await res.socket!.next("ready");
  return res.socket!;
}
