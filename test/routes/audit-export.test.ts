import { describe, expect, it } from "vitest";
import { csvCell, EXPORT_PAGE } from "../../src/audit/log";
import { newId } from "../../src/lib/ids";
import { addMember, call, createTenant, expectProblem, expectStatus, type TestTenant, tenantD1 } from "../harness";

/** RFC 4180 read back: quoted cells with doubled quotes, CRLF between records. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted && ch === '"' && text[i + 1] === '"') {
      cell += '"';
      i++;
    } else if (ch === '"') {
      quoted = !quoted;
    } else if (quoted || (ch !== "," && !(ch === "\r" && text[i + 1] === "\n"))) {
      cell += ch;
    } else {
      row.push(cell);
      cell = "";
      if (ch === "\r") {
        rows.push(row);
        row = [];
        i++;
      }
    }
  }
  return rows;
}

const HOSTILE = ['=HYPERLINK("http://evil.example","x")', "+1+2", "-3", "@SUM(A1:A2)", "\tTab", 'Comma, "quoted"', "Line\nbreak"];

/** Entries written straight into the tenant's log, `n` of them one second apart from `start`, the first few with hostile values. */
async function seed(t: TestTenant, n: number, start: number) {
  const db = await tenantD1(t);
  const rows = Array.from({ length: n }, (_, i) => {
    const at = start + i * 1000;
    return [newId("aud", at), t.id, "user", i < HOSTILE.length ? HOSTILE[i]! : `usr_${i % 3}`, i % 2 ? "project.created" : "post.approved", "project", `prj_${i}`, `req_${i}`, JSON.stringify({ i }), new Date(at).toISOString()];
  });
  for (let i = 0; i < rows.length; i += 200) {
    await db
      .prepare("INSERT INTO audit_log (id, tenant_id, actor_type, actor_id, action, resource_type, resource_id, request_id, details, created_at) SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]'), json_extract(value, '$[6]'), json_extract(value, '$[7]'), json_extract(value, '$[8]'), json_extract(value, '$[9]') FROM json_each(?)")
      .bind(JSON.stringify(rows.slice(i, i + 200)))
      .run();
  }
  return rows;
}

const exported = (t: TestTenant, query: string, token = t.owner.token) => call(`${t.host}/v1/audit-log/export${query}`, { token });

describe("the audit log's export and stats", () => {
  it("neutralises formulas and quotes as RFC 4180 says, cell by cell", () => {
    expect(csvCell("=1+1")).toBe("'=1+1");
    expect(csvCell("+1")).toBe("'+1");
    expect(csvCell("-1")).toBe("'-1");
    expect(csvCell("@x")).toBe("'@x");
    expect(csvCell("\tx")).toBe("'\tx");
    expect(csvCell('a "b", c')).toBe('"a ""b"", c"');
    expect(csvCell("a\r\nb")).toBe('"a\r\nb"');
    expect(csvCell("=a,b")).toBe(`"'=a,b"`);
    expect(csvCell("plain")).toBe("plain");
    expect(csvCell(null)).toBe("");
  });

  it("streams every entry, oldest first, across pages, as CSV a spreadsheet cannot run and as NDJSON", async () => {
    const t = await createTenant();
    const start = Date.parse("2026-01-01T00:00:00Z");
    const rows = await seed(t, EXPORT_PAGE * 2 + 37, start);

    const csv = await exported(t, "?format=csv&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z");
    expectStatus(csv, 200);
    expect(csv.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(csv.headers.get("content-disposition")).toMatch(new RegExp(`^attachment; filename="audit-${t.slug}-\\d{4}-\\d{2}-\\d{2}\\.csv"$`));
    const table = parseCsv(csv.text);
    expect(table[0]).toEqual(["id", "created_at", "action", "actor_type", "actor_id", "resource_type", "resource_id", "request_id", "details"]);
    const body = table.slice(1);
    expect(body.map((r) => r[0])).toEqual(rows.map((r) => r[0]));
    // Each hostile value comes back as text: a leading ' on the ones a spreadsheet would run, the rest intact.
    expect(body.slice(0, HOSTILE.length).map((r) => r[4])).toEqual(["'=HYPERLINK(\"http://evil.example\",\"x\")", "'+1+2", "'-3", "'@SUM(A1:A2)", "'\tTab", 'Comma, "quoted"', "Line\nbreak"]);
    expect(body[100]).toEqual(rows[100]!.slice(0, 1).concat([rows[100]![9]!, rows[100]![4]!, "user", rows[100]![3]!, "project", "prj_100", "req_100", '{"i":100}']));

    const ndjson = await exported(t, "?format=ndjson&action=project.created");
    expectStatus(ndjson, 200);
    expect(ndjson.headers.get("content-type")).toBe("application/x-ndjson");
    const lines = ndjson.text.trimEnd().split("\n").map((l) => JSON.parse(l));
    // The tenant's own sign-up entries come too; the seeded ones are every second row.
    const seeded = lines.filter((l) => l.resource.id?.startsWith("prj_") && l.request_id.startsWith("req_"));
    expect(seeded.map((l) => l.id)).toEqual(rows.filter((_, i) => i % 2).map((r) => r[0]));
    expect(seeded[0]).toMatchObject({ action: "project.created", actor: { type: "user", id: "+1+2" }, details: { i: 1 } });

    // A time range keeps exactly its entries, by created_at.
    const ranged = parseCsv((await exported(t, "?from=2026-01-01T00:01:40Z&to=2026-01-01T00:01:45%2B00:00")).text).slice(1);
    expect(ranged.map((r) => r[1])).toEqual([100, 101, 102, 103, 104].map((s) => new Date(start + s * 1000).toISOString()));
  });

  it("counts entries by action, actor and day", async () => {
    const t = await createTenant();
    await seed(t, 60, Date.parse("2026-03-01T23:59:00Z"));
    const stats = await call(`${t.host}/v1/audit-log/stats?from=2026-03-01T00:00:00Z&to=2026-03-03T00:00:00Z`, { token: t.owner.token });
    expectStatus(stats, 200);
    expect(stats.body.total).toBe(60);
    expect(stats.body.by_action).toEqual([
      { action: "post.approved", count: 30 },
      { action: "project.created", count: 30 },
    ]);
    expect(stats.body.by_day).toEqual([
      { day: "2026-03-01", count: 60 },
    ]);
    expect(stats.body.by_actor.reduce((n: number, a: { count: number }) => n + a.count, 0)).toBe(60);
    const later = await seed(t, 5, Date.parse("2026-03-02T10:00:00Z"));
    const again = await call(`${t.host}/v1/audit-log/stats?from=2026-03-01T00:00:00Z&to=2026-03-03T00:00:00Z`, { token: t.owner.token });
    expect(again.body.by_day).toEqual([
      { day: "2026-03-01", count: 60 },
      { day: "2026-03-02", count: later.length },
    ]);
  });

  it("names a bad filter, and shows the log only to owners and admins", async () => {
    const t = await createTenant();
    const field = (res: Awaited<ReturnType<typeof call>>) => res.body.errors?.[0]?.field;
    const bad = async (query: string, name: string) => {
      const res = await exported(t, query);
      expectProblem(res, 400, "VALIDATION_FAILED");
      expect(field(res)).toBe(name);
    };
    await bad("?format=xlsx", "format");
    await bad("?from=yesterday", "from");
    await bad("?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "to");
    const tooLong = await call(`${t.host}/v1/audit-log/stats?from=2024-01-01T00:00:00Z&to=2026-01-01T00:00:00Z`, { token: t.owner.token });
    expectProblem(tooLong, 400, "VALIDATION_FAILED");
    expect(field(tooLong)).toBe("from");
    const editor = await addMember(t, "editor");
    expectProblem(await exported(t, "", editor.token), 403, "FORBIDDEN");
    expectProblem(await call(`${t.host}/v1/audit-log/stats`, { token: editor.token }), 403, "FORBIDDEN");
    // Another tenant's owner exports their own log: nothing of this one's.
    const other = await createTenant();
    await seed(t, 3, Date.parse("2026-01-01T00:00:00Z"));
    expect((await exported(other, "?format=ndjson&from=2025-12-31T00:00:00Z&to=2026-01-02T00:00:00Z", other.owner.token)).text).toBe("");
  });
});
