import { z } from "@hono/zod-openapi";
import { ApiError } from "./errors";

/** `?limit=&cursor=` as every list route takes them. */
export const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20).openapi({ description: "Items per page, 1–100." }),
  cursor: z
    .string()
    .max(200)
    .regex(/^[A-Za-z0-9_-]+$/, "a cursor as a list handed it out (base64url)")
    .optional()
    .openapi({ description: "`next_cursor` from the previous page. Shaped as base64url; one this list did not hand out is `400 INVALID_CURSOR`." }),
});

/** Cursors are opaque to clients: base64url of the last id seen. */
export function encodeCursor(lastId: string): string {
  return btoa(lastId).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

const invalidCursor = () =>
  new ApiError("INVALID_CURSOR", "The cursor is not one this list handed out", {
    errors: [{ in: "query", field: "cursor", message: "Invalid cursor" }],
  });

/** Decodes a cursor into the value it carries (for lists ordered by something other than an id). */
export function decodeCursorValue(cursor: string): string {
  try {
    return atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
  } catch {
    throw invalidCursor();
  }
}

/** Decodes a cursor into the id it carries and checks it has the expected prefix. */
export function decodeCursor(cursor: string, prefix: string): string {
  const id = decodeCursorValue(cursor);
  if (id.startsWith(`${prefix}_`) && /^[a-z]+_[0-9a-z]+$/.test(id)) return id;
  throw invalidCursor();
}

/** Builds `{data, next_cursor}` from a page fetched with limit + 1 rows. */
export function page<T extends { id: string }, U>(rows: T[], limit: number, render: (row: T) => U) {
  const hasMore = rows.length > limit;
  const items = hasMore ? rows.slice(0, limit) : rows;
  const last = items.at(-1);
  return { data: items.map(render), next_cursor: hasMore && last ? encodeCursor(last.id) : null };
}
