/** `{{name}}` or `{{ name }}`: a letter or underscore, then letters, digits, `_`, `.` or `-`. */
const VARIABLE = /\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}/g;

/** The distinct variables a template uses, in order of first use. */
export function templateVariables(template: string): string[] {
  return [...new Set([...template.matchAll(VARIABLE)].map((m) => m[1]!))];
}

export type Rendered = { ok: true; text: string } | { ok: false; missing: string[] };

/** Fills a template's variables from `values`; every variable must have a value. */
export function renderTemplate(template: string, values: Record<string, unknown>): Rendered {
  const missing = templateVariables(template).filter((name) => values[name] === undefined || values[name] === null);
  if (missing.length) return { ok: false, missing };
  return { ok: true, text: template.replace(VARIABLE, (_, name: string) => String(values[name])) };
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
