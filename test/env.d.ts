import type { D1Migration } from "cloudflare:test";
import type { Env as WorkerEnv } from "../src/env";

declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {
      CONTROL_MIGRATIONS: D1Migration[];
      TENANT_MIGRATIONS: D1Migration[];
      /** The test webhook receiver (test/receiver/receiver.js), where the Worker's outbound fetches land. */
      RECEIVER: Fetcher;
    }
  }
}
