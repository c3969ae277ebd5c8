// The floor of a data export, for `npm run bench`: a bare Worker that streams the same rows (every
// table of the tenant's database, a page at a time), the same messages (from the same conversation
// rooms, through the platform's own Durable Object binding) and the same R2 bytes into a ZIP with the
// same library, as its response body. No manifest, no hashing, no progress, no multipart upload:
// what streaming that data into a ZIP costs at the least.
import { Zip, ZipDeflate, ZipPassThrough } from "fflate";

interface Env {
  ARTIFACTS: R2Bucket;
  ROOM: DurableObjectNamespace<{ history(after: number, limit: number): Promise<{ seq: number }[]> } & Rpc.DurableObjectBranded>;
  [binding: string]: unknown;
}

export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    const url = new URL(req.url);
    const db = env[url.searchParams.get("db")!] as D1Database;
    const tenant = url.searchParams.get("tenant")!;
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>(undefined, { highWaterMark: 4 }, { highWaterMark: 4 });
    const writer = writable.getWriter();
    const pending: Promise<void>[] = [];
    const zip = new Zip((err, chunk, final) => {
      if (err) throw err;
      pending.push(writer.write(chunk));
      if (final) pending.push(writer.close());
    });
    const drain = async () => {
      await Promise.all(pending.splice(0));
    };
    const encoder = new TextEncoder();
    (async () => {
      const tables = (await db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name NOT LIKE '%fts%' AND name <> 'd1_migrations'").all<{ name: string }>()).results;
      for (const { name } of tables) {
        const file = new ZipDeflate(`${name}.ndjson`, { level: 6 });
        zip.add(file);
        let after = 0;
        for (;;) {
          const rows = (await db.prepare(`SELECT rowid AS _r, * FROM "${name}" WHERE rowid > ? ORDER BY rowid LIMIT 500`).bind(after).all<Record<string, unknown>>()).results;
          if (rows.length) file.push(encoder.encode(`${rows.map((r) => JSON.stringify(r)).join("\n")}\n`));
          await drain();
          if (rows.length < 500) break;
          after = rows.at(-1)!._r as number;
        }
        file.push(new Uint8Array(0), true);
      }
      const messages = new ZipDeflate("messages.ndjson", { level: 6 });
      zip.add(messages);
      for (const { id } of (await db.prepare("SELECT id FROM conversations ORDER BY id").all<{ id: string }>()).results) {
        const room = env.ROOM.get(env.ROOM.idFromName(`${tenant}:${id}`));
        let after = 0;
        for (;;) {
          const page = await room.history(after, 500);
          if (page.length) messages.push(encoder.encode(`${page.map((m) => JSON.stringify(m)).join("\n")}\n`));
          await drain();
          if (page.length < 500) break;
          after = page.at(-1)!.seq;
        }
      }
      messages.push(new Uint8Array(0), true);
      for (const { key } of (await db.prepare("SELECT r2_key AS key FROM artifact_versions ORDER BY rowid").all<{ key: string }>()).results) {
        const object = await env.ARTIFACTS.get(key);
        if (!object) continue;
        const file = new ZipPassThrough(key);
        zip.add(file);
        const reader = object.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          file.push(value);
          await drain();
        }
        file.push(new Uint8Array(0), true);
      }
      zip.end();
      await drain();
    })().catch((err) => writer.abort(err));
    return new Response(readable, { headers: { "content-type": "application/zip" } });
  },
};
