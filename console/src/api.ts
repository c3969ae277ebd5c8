// The console's one way to the API: same origin, the access token from this tab's session, and a
// problem+json answer turned into an error that says what the API said (detail, and each field).

export interface FieldError {
  field: string;
  message: string;
}

/** An answer the API refused: its status, code, `detail` and the fields it named. */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
    readonly fields: FieldError[] = [],
  ) {
    super(detail);
  }
}

export interface Session {
  accessToken: string;
  refreshToken: string;
  user: { id: string; email: string; name: string };
}

const KEY = "tessera.session";

export const session = {
  get(): Session | null {
    const raw = sessionStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  },
  set(s: Session) {
    sessionStorage.setItem(KEY, JSON.stringify(s));
  },
  clear() {
    sessionStorage.removeItem(KEY);
  },
};

let refreshing: Promise<boolean> | null = null;

/** Trades the refresh token for a new pair (access tokens live 10 minutes); one at a time. */
export function refresh(): Promise<boolean> {
  refreshing ??= (async () => {
    const s = session.get();
    if (!s) return false;
    const res = await fetch("/v1/auth/refresh", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ refresh_token: s.refreshToken }) }).catch(() => null);
    if (!res?.ok) return false;
    const pair = (await res.json()) as { access_token: string; refresh_token: string };
    session.set({ ...s, accessToken: pair.access_token, refreshToken: pair.refresh_token });
    return true;
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

/** A fetch with the session's token, refreshed once if it has expired; network trouble is an ApiProblem. */
export async function authorized(path: string, init: RequestInit = {}, auth = true): Promise<Response> {
  const send = () => {
    const headers = new Headers(init.headers);
    const s = session.get();
    if (auth && s) headers.set("authorization", `Bearer ${s.accessToken}`);
    return fetch(path, { ...init, headers });
  };
  try {
    const res = await send();
    if (res.status === 401 && auth && session.get() && (await refresh())) return await send();
    return res;
  } catch {
    throw new ApiProblem(0, "NETWORK", "The platform could not be reached. Check your connection and try again.");
  }
}

/**
 * Calls the API; answers the parsed JSON (or null for 204), or throws ApiProblem. `bearer` sends
 * that credential instead of the session's (the operator's token): nothing to refresh, and a 401
 * does not end the session.
 */
export async function api<T = unknown>(path: string, init: { method?: string; body?: unknown; auth?: boolean; bearer?: string } = {}): Promise<T> {
  const headers: Record<string, string> = {};
  if (init.body !== undefined) headers["content-type"] = "application/json";
  if (init.bearer) headers.authorization = `Bearer ${init.bearer}`;
  const sessionAuth = init.auth !== false && !init.bearer;
  const res = await authorized(path, { method: init.method ?? (init.body === undefined ? "GET" : "POST"), headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) }, sessionAuth);
  return answer<T>(res, sessionAuth);
}

/** A response's JSON, or its problem as an ApiProblem. */
export async function answer<T>(res: Response, auth = true): Promise<T> {
  if (res.status === 204) return null as T;
  const text = await res.text();
  const body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  if (!res.ok) {
    const errors = Array.isArray(body.errors) ? (body.errors as FieldError[]) : [];
    if (res.status === 401 && auth) {
      // The session is over (refresh refused too): the console goes back to signing in.
      session.clear();
      dispatchEvent(new Event("tessera:signed-out"));
    }
    throw new ApiProblem(res.status, String(body.code ?? res.status), String(body.detail ?? body.title ?? `The request failed (${res.status})`), errors);
  }
  return body as T;
}

/** Where the console is served: the platform's own host, or a tenant's. */
export type Place = { kind: "platform"; baseDomain: string } | { kind: "tenant"; baseDomain: string; tenant: { id: string; slug: string; name: string } };

export async function whereAmI(): Promise<Place> {
  const here = await api<{ kind: "platform" | "tenant"; base_domain: string; tenant?: { id: string; slug: string; name: string } }>("/.well-known/tessera-host", { auth: false });
  return here.kind === "tenant" && here.tenant ? { kind: "tenant", baseDomain: here.base_domain, tenant: here.tenant } : { kind: "platform", baseDomain: here.base_domain };
}

/**
 * Sends a file as the request body, reporting progress (XMLHttpRequest: fetch cannot report an
 * upload's progress). Renews an expired access token first; answers the JSON or throws ApiProblem.
 */
export async function upload<T>(path: string, file: Blob, contentType: string, onProgress: (fraction: number | null) => void): Promise<T> {
  // A cheap authorized read first: it renews an expired access token, which the upload then carries.
  await authorized("/v1/me").catch(() => {});
  return new Promise<T>((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    const token = session.get()?.accessToken;
    if (token) xhr.setRequestHeader("authorization", `Bearer ${token}`);
    xhr.setRequestHeader("content-type", contentType);
    xhr.upload.onprogress = (p) => onProgress(p.lengthComputable ? p.loaded / p.total : null);
    xhr.onload = () => {
      const body = JSON.parse(xhr.responseText || "{}") as Record<string, unknown>;
      if (xhr.status >= 200 && xhr.status < 300) resolve(body as T);
      else reject(new ApiProblem(xhr.status, String(body.code ?? xhr.status), String(body.detail ?? `The upload failed (${xhr.status})`), Array.isArray(body.errors) ? (body.errors as FieldError[]) : []));
    };
    xhr.onerror = () => reject(new ApiProblem(0, "NETWORK", "The upload did not reach the platform. Check your connection and try again."));
    xhr.send(file);
  });
}
