import type { Config } from "../config/config.js";
import type { ModelPool } from "../engine/model-pool.js";
import type { Registry } from "../registry/registry.js";
import type { ModelRescanner } from "../registry/rescan.js";
import type { ServerMetrics } from "./metrics.js";

/** What route plugins get: the layers below the server, nothing else. */
export interface ServerContext {
  registry: Registry;
  /** Rescans the model folders (on file events, a timer, and POST /refresh). */
  rescanner: ModelRescanner;
  pool: ModelPool;
  config: Config;
  version: string;
  startedAt: number;
  /** Told about generations and responses, for /metrics; absent, nothing is measured. */
  metrics?: ServerMetrics;
}
