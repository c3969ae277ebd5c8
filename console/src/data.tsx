import { useEffect, useState } from "preact/hooks";
import { api } from "./api";
import { type Failure, failureOf } from "./form";

/** A list from the API, with its loading and failure states. */
export function useList<T>(path: string | null) {
  const [items, setItems] = useState<T[] | null>(null);
  const [failure, setFailure] = useState<Failure | null>(null);
  const reload = () =>
    path === null
      ? Promise.resolve()
      : api<{ data: T[] }>(path)
          .then((page) => {
            setItems(page.data);
            setFailure(null);
          })
          .catch((err: unknown) => setFailure(failureOf(err)));
  useEffect(() => {
    setItems(null);
    void reload();
  }, [path]);
  return { items, setItems, failure, reload };
}

/** One object from the API. */
export function useOne<T>(path: string | null) {
  const [value, setValue] = useState<T | null>(null);
  const [failure, setFailure] = useState<Failure | null>(null);
  const reload = () =>
    path === null
      ? Promise.resolve()
      : api<T>(path)
          .then((v) => {
            setValue(v);
            setFailure(null);
          })
          .catch((err: unknown) => setFailure(failureOf(err)));
  useEffect(() => {
    setValue(null);
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
