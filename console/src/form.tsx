import type { ComponentChildren } from "preact";
import { ApiProblem, type FieldError } from "./api";

/** What a failed submit shows: the API's detail, and each named field's message beside it. */
export interface Failure {
  message: string;
  fields: FieldError[];
}

export const failureOf = (err: unknown): Failure =>
  err instanceof ApiProblem ? { message: err.message, fields: err.fields } : { message: "Something went wrong; try again.", fields: [] };

/** A labelled input that shows the API's message for its field (matched by the field's name). */
export function Field(props: { label: string; name: string; type?: "text" | "email" | "password" | "number" | "url" | "date" | "datetime-local" | "search"; multiline?: boolean; id?: string; autoComplete?: string; failure: Failure | null; value: string; onInput: (v: string) => void; required?: boolean; hint?: string }) {
  const error = props.failure?.fields.find((f) => f.field === props.name || f.field.endsWith(`.${props.name}`));
  // Two forms on a page may name the same field: `id` tells their inputs apart.
  const id = props.id ?? `field-${props.name.replaceAll(".", "-")}`;
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      {props.multiline ? (
        <textarea
          id={id}
          name={props.name}
          rows={5}
          required={props.required}
          value={props.value}
          aria-invalid={error ? "true" : undefined}
          aria-describedby={error ? `${id}-error` : props.hint ? `${id}-hint` : undefined}
          onInput={(e) => props.onInput((e.target as HTMLTextAreaElement).value)}
        />
      ) : (
        <input
          id={id}
          name={props.name}
          // (Preact's types narrow `type` per input kind; the union is one of them at runtime.)
          type={(props.type ?? "text") as "text"}
          autoComplete={props.autoComplete}
          required={props.required}
          value={props.value}
          aria-invalid={error ? "true" : undefined}
          aria-describedby={error ? `${id}-error` : props.hint ? `${id}-hint` : undefined}
          onInput={(e) => props.onInput((e.target as HTMLInputElement).value)}
        />
      )}
      {props.hint && !error && (
        <small id={`${id}-hint`} class="hint">
          {props.hint}
        </small>
      )}
      {error && (
        <small id={`${id}-error`} class="error">
          {error.message}
        </small>
      )}
    </div>
  );
}

/** The form's own message (the API's detail) above the submit button. */
export function FormError({ failure }: { failure: Failure | null }) {
  return failure ? (
    <p role="alert" class="error">
      {failure.message}
    </p>
  ) : null;
}

export function Submit({ busy, children }: { busy: boolean; children: ComponentChildren }) {
  return (
    <button type="submit" disabled={busy} aria-busy={busy}>
      {busy ? "Working…" : children}
    </button>
  );
}

/** A labelled select; `options` are values, or [value, label] pairs. */
export function SelectField(props: { id: string; label: string; value: string; onChange: (v: string) => void; options: readonly (string | readonly [string, string])[]; disabled?: boolean }) {
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      <select id={props.id} value={props.value} disabled={props.disabled} onChange={(e) => props.onChange((e.target as HTMLSelectElement).value)}>
        {props.options.map((o) => {
          const [value, label] = typeof o === "string" ? [o, o] : o;
          return (
            <option key={value} value={value}>
              {label}
            </option>
          );
        })}
      </select>
    </div>
  );
}

/** A group of checkboxes choosing some of `options` ([value, label] pairs); `wide` lays them out in columns. */
export function Choices(props: { legend: string; options: readonly (readonly [string, string])[]; chosen: readonly string[]; onChange: (chosen: string[]) => void; wide?: boolean; empty?: string }) {
  const toggle = (value: string, on: boolean) => props.onChange(on ? [...props.chosen, value] : props.chosen.filter((x) => x !== value));
  return (
    <fieldset class={props.wide ? "picker scopes" : "picker"}>
      <legend>{props.legend}</legend>
      {props.options.length === 0 && props.empty && <p class="empty">{props.empty}</p>}
      {props.options.map(([value, label]) => (
        <label class="check" key={value}>
          <input type="checkbox" checked={props.chosen.includes(value)} onChange={(e) => toggle(value, (e.target as HTMLInputElement).checked)} />
          {label}
        </label>
      ))}
    </fieldset>
  );
}
