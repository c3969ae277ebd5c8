/** A structured JSON logger bound to one request's id; Workers Logs indexes every field. */
export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** Logger that writes one JSON line per event with the request id. */
export function createLogger(base: Record<string, unknown>): Logger {
  const write = (level: string, msg: string, fields?: Record<string, unknown>) => {
    const line = JSON.stringify({ level, msg, ...base, ...fields, ts: new Date().toISOString() });
    if (level === "error") console.error(line);
    else if (level === "warn") console.warn(line);
    else console.log(line);
  };
  return {
    info: (msg, fields) => write("info", msg, fields),
    warn: (msg, fields) => write("warn", msg, fields),
    error: (msg, fields) => write("error", msg, fields),
  };
}

/** An error as loggable fields (message, name, stack), never sent to clients. */
export function errorFields(err: unknown): Record<string, unknown> {
  if (err instanceof Error) {
    // Drizzle and D1 wrap the real failure in `cause`; log the whole chain.
    const causes: string[] = [];
    for (let e: unknown = err.cause, depth = 0; e !== undefined && depth < 5; depth++) {
      causes.push(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
      e = e instanceof Error ? e.cause : undefined;
    }
    return { error: err.message, error_name: err.name, stack: err.stack, ...(causes.length ? { causes } : {}) };
  }
  return { error: String(err) };
}
