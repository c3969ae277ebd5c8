/** `{{name}}` or `{{ name }}`: a letter or underscore, then letters, digits, `_`, `.` or `-`. */
const VARIABLE = /\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}/g;

/** The distinct variables a template uses, in order of first use. */
export function templateVariables(template: string): string[] {
  return [...new Set([...template.matchAll(VARIABLE)].map((m) => m[1]!))];
}

export type Rendered = { ok: true; text: string } | { ok: false; missing: string[] } | { ok: false; tooLong: number };

/** A variable's value: only `values`' own properties count, so `{{constructor}}` is missing, not `Object`. */
const variableValue = (values: Record<string, unknown>, name: string) => (Object.hasOwn(values, name) ? values[name] : undefined);

/**
 * Fills a template's variables from `values`; every variable must have a value. A result longer
 * than `maxChars` is refused with its length (a short template repeating a long value can
 * otherwise render many times its input's size).
 */
export function renderTemplate(template: string, values: Record<string, unknown>, maxChars: number): Rendered {
  const missing = templateVariables(template).filter((name) => variableValue(values, name) === undefined || variableValue(values, name) === null);
  if (missing.length) return { ok: false, missing };
  let length = template.length;
  for (const m of template.matchAll(VARIABLE)) length += String(variableValue(values, m[1]!)).length - m[0].length;
  if (length > maxChars) return { ok: false, tooLong: length };
  return { ok: true, text: template.replace(VARIABLE, (_, name: string) => String(variableValue(values, name))) };
}

/**
 * Picks a version by traffic weight: a version with weight 30 of a total 100 is picked 30% of the
 * time. `roll` is uniform in [0, 1). Returns null when no version has any weight.
 */
export function pickByWeight<T extends { weight: number }>(versions: T[], roll: number): T | null {
  const total = versions.reduce((n, v) => n + Math.max(0, v.weight), 0);
  if (total <= 0) return null;
  let point = roll * total;
  for (const v of versions) {
    point -= Math.max(0, v.weight);
    if (point < 0) return v;
  }
  return versions.findLast((v) => v.weight > 0) ?? null;
}
