import { BUNDLED_MIGRATIONS } from "./tenant.generated";

// Applying the tenant schema to one tenant database through its binding: the migrations bundled
// with the Worker (scripts/bundle-migrations.ts), recorded in the same `d1_migrations` table
// `wrangler d1 migrations apply` keeps, so either path sees what the other applied.

export interface Migration {
  name: string;
  statements: readonly string[];
}

/** The newest migration this Worker carries: where a rollout goes unless told otherwise. */
export const LATEST_SCHEMA = BUNDLED_MIGRATIONS.at(-1)!.name;

/**
 * The oldest schema this code works with. A migration that only adds (a table, a nullable column,
 * an index) leaves it where it is; one that drops or renames what the previous code reads moves it,
 * in a release after the code stopped reading it (expand, then contract: see the README). A tenant
 * whose database is behind it is answered 503 with Retry-After until its rollout reaches it.
 */
export const REQUIRED_SCHEMA = "0019_compliance.sql";

/** Migration names sort in the order they apply (a zero-padded number leads each). */
export const schemaAtLeast = (schema: string | null | undefined, wanted: string) => schema != null && schema >= wanted;

/** A migration that failed on a database: which one, the statement, and what the database said. */
export class MigrationFailed extends Error {
  constructor(
    readonly migration: string,
    readonly statement: string,
    readonly statementIndex: number,
    message: string,
  ) {
    super(`${migration}, statement ${statementIndex + 1}: ${message}`);
  }
}

const TABLE = "CREATE TABLE IF NOT EXISTS d1_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)";

/** The newest migration applied to a database, in one read (null: none yet). */
export async function schemaOf(d1: D1Database): Promise<string | null> {
  try {
    return (await d1.prepare("SELECT max(name) AS name FROM d1_migrations").first<{ name: string | null }>())?.name ?? null;
  } catch {
    // No d1_migrations table: nothing was ever applied here.
    return null;
  }
}

/**
 * Brings a database to `target`: each pending migration in one batch with its `d1_migrations` row,
 * so it applies whole or not at all (a new database: all of them in one). A database already at the
 * target costs one read. On a failure the database stays at its last whole migration, and the error
 * names the statement.
 */
export async function migrateTo(d1: D1Database, target = LATEST_SCHEMA, migrations: readonly Migration[] = BUNDLED_MIGRATIONS): Promise<{ from: string | null; to: string | null; applied: string[] }> {
  const from = await schemaOf(d1);
  if (schemaAtLeast(from, target)) return { from, to: from, applied: [] };
  await d1.prepare(TABLE).run();
  const done = new Set((await d1.prepare("SELECT name FROM d1_migrations").all<{ name: string }>()).results.map((r) => r.name));
  const pending = migrations.filter((m) => m.name <= target && !done.has(m.name));
  // A new database (nothing applied) takes every migration in one batch — one round trip instead
  // of one per migration, and still all or nothing. Should it fail, the database is as it was, and
  // the migrations go one by one below to find and name the statement.
  if (done.size === 0 && pending.length > 1) {
    try {
      await d1.batch(pending.flatMap((m) => [...m.statements.map((s) => d1.prepare(s)), d1.prepare("INSERT INTO d1_migrations (name) VALUES (?)").bind(m.name)]));
      return { from, to: pending.at(-1)!.name, applied: pending.map((m) => m.name) };
    } catch {}
  }
  const applied: string[] = [];
  for (const m of pending) {
    try {
      await d1.batch([...m.statements.map((s) => d1.prepare(s)), d1.prepare("INSERT INTO d1_migrations (name) VALUES (?)").bind(m.name)]);
    } catch (err) {
      throw await locateFailure(d1, m, err);
    }
    applied.push(m.name);
  }
  return { from, to: applied.at(-1) ?? from, applied };
}

const SENTINEL = "__tessera_probe_rolls_back";

/**
 * Finds which statement of a failed migration fails. D1 reports the error, not the statement; each
 * probe runs the first k statements and then one that cannot succeed (a table that does not exist),
 * so the batch always rolls back and nothing is left applied. A binary search over k: the smallest
 * prefix that fails with an error other than the sentinel's ends at the failing statement.
 */
async function locateFailure(d1: D1Database, m: Migration, original: unknown): Promise<MigrationFailed> {
  const message = (e: unknown) => (e instanceof Error ? e.message : String(e)).replace(/^D1_ERROR: /, "");
  const failsBy = async (k: number): Promise<string | null> => {
    try {
      await d1.batch([...m.statements.slice(0, k).map((s) => d1.prepare(s)), d1.prepare(`SELECT * FROM ${SENTINEL}`)]);
      return null;
    } catch (e) {
      return message(e).includes(SENTINEL) ? null : message(e);
    }
  };
  // Every statement applies: what failed was recording the migration (applied meanwhile by another run).
  if ((await failsBy(m.statements.length)) === null) return new MigrationFailed(m.name, "INSERT INTO d1_migrations (name) VALUES (?)", m.statements.length, message(original));
  let lo = 1;
  let hi = m.statements.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((await failsBy(mid)) !== null) hi = mid;
    else lo = mid + 1;
  }
  const index = lo - 1;
  return new MigrationFailed(m.name, m.statements[index] ?? "", index, (await failsBy(lo)) ?? message(original));
}
