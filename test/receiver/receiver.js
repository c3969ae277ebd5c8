// A webhook receiver for the tests: the Worker's outbound fetches land here. Each inbox (the first
// path segment) records what it was sent and answers from a script the test sets:
//   POST /<inbox>/__script  [{status, headers?, body?, hang_ms?}, …]   answers for the next deliveries (then 200),
//                                                                   each after hang_ms if given
//   GET  /<inbox>/__deliveries                               what was delivered, oldest first
export class Inbox {
  constructor(state) {
    this.storage = state.storage;
  }
  async fetch(req) {
    const url = new URL(req.url);
    if (url.pathname.endsWith("/__deliveries")) return Response.json((await this.storage.get("deliveries")) ?? []);
    if (url.pathname.endsWith("/__script")) {
      await this.storage.put("script", await req.json());
      return new Response("ok");
    }
    // The body first: no other I/O may come between reading and writing the log, or concurrent deliveries would overwrite each other.
    const body = await req.text();
    const script = (await this.storage.get("script")) ?? [];
    const answer = script.shift() ?? { status: 200 };
    const deliveries = (await this.storage.get("deliveries")) ?? [];
    deliveries.push({ url: req.url, method: req.method, headers: Object.fromEntries(req.headers), body, answered: answer.status });
    await this.storage.put({ script, deliveries });
    if (answer.hang_ms) await new Promise((r) => setTimeout(r, answer.hang_ms));
    return new Response(answer.body ?? "received", { status: answer.status, headers: answer.headers ?? {} });
  }
}

export default {
  fetch(req, env) {
    const inbox = new URL(req.url).pathname.split("/")[1] || "default";
    return env.INBOX.get(env.INBOX.idFromName(inbox)).fetch(req);
  },
};
