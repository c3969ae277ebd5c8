import { createContext } from "preact";
import { useContext, useEffect, useRef, useState } from "preact/hooks";
import { api } from "./api";
import { type Failure, failureOf } from "./form";

/**
 * Which answer may still land: `start` marks a new request and answers whether it is still the
 * latest; `bump` marks a local change, which an answer to an earlier request must not overwrite
 * (a slow first load must not wipe the row just made, a slow unfiltered page the filtered one).
 */
export function useLatest() {
  const gen = useRef(0);
  return {
    start: () => {
      const mine = ++gen.current;
      return () => mine === gen.current;
    },
    bump: () => {
      gen.current++;
    },
  };
}

/** The signed-in person's permissions (from `GET /v1/me`): what the console offers them. */
export const Permissions = createContext<readonly string[]>([]);

/** Whether the signed-in person holds a permission. */
export function useCan() {
  const held = useContext(Permissions);
  return (permission: string) => held.includes(permission);
}

/** A list from the API, with its loading and failure states. */
export function useList<T>(path: string | null) {
  const one = useOne<{ data: T[] }>(path);
  return { items: one.value?.data ?? null, setItems: (items: T[] | null) => one.setValue(items && { data: items }), failure: one.failure, reload: one.reload };
}

/** One object from the API (`bearer`: with that credential instead of the session's). */
export function useOne<T>(path: string | null, bearer?: string) {
  const [value, setRaw] = useState<T | null>(null);
  const [failure, setFailure] = useState<Failure | null>(null);
  const latest = useLatest();
  const reload = () => {
    if (path === null) return Promise.resolve();
    const fresh = latest.start();
    return api<T>(path, { bearer })
      .then((v) => {
        if (!fresh()) return;
        setRaw(v);
        setFailure(null);
      })
      .catch((err: unknown) => fresh() && setFailure(failureOf(err)));
  };
  const setValue = (v: T | null) => {
    latest.bump();
    setRaw(v);
  };
  useEffect(() => {
    setRaw(null);
    void reload();
  }, [path]);
  return { value, setValue, failure, reload };
}

/** What a list shows before and instead of its rows: loading, the API's failure, or an empty state. */
export function ListState({ items, failure, empty }: { items: unknown[] | null; failure: Failure | null; empty: string }) {
  if (failure) return <p role="alert" class="error">{failure.message}</p>;
  if (items === null) return <p class="loading">Loading…</p>;
  return items.length === 0 ? <p class="empty">{empty}</p> : null;
}

/**
 * An action's busy flag and failure: `run` marks it busy, clears the last failure, and keeps the
 * API's problem to show; it answers whether the action succeeded.
 */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<Failure | null>(null);
  const run = async (act: () => Promise<unknown>): Promise<boolean> => {
    setBusy(true);
    setFailure(null);
    try {
      await act();
      return true;
    } catch (err) {
      setFailure(failureOf(err));
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { busy, failure, setFailure, run };
}

/** A submit handler that keeps the page where it is. */
export const submit = (act: () => unknown) => (e: Event) => {
  e.preventDefault();
  void act();
};

export const when = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString() : "—");
