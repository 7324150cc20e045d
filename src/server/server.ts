import type { FastifyInstance, FastifyServerOptions } from "fastify";
import { AUTO_PORT_LAST, type Config, DEFAULT_PORT } from "../config/config.js";
import { createModelPool } from "../engine/create-pool.js";
import { Registry } from "../registry/registry.js";
import { ModelRescanner } from "../registry/rescan.js";
import { buildApp } from "./app.js";
import type { ServerContext } from "./context.js";
import { ServerMetrics } from "./metrics.js";

export interface RunningServer {
  app: FastifyInstance;
  ctx: ServerContext;
  url: string;
  port: number;
  /**
   * Stops accepting and lets in-flight requests finish for `drainTimeoutMs`; then cuts the
   * generations still running, waits for their decode steps to end, closes the connections left,
   * and unloads the models.
   */
  close(): Promise<void>;
}

async function listen(app: FastifyInstance, host: string, port: number, auto: boolean): Promise<number> {
  const ports = auto ? Array.from({ length: AUTO_PORT_LAST - DEFAULT_PORT + 1 }, (_, i) => DEFAULT_PORT + i).concat(0) : [port];
  for (const p of ports) {
    try {
      await app.listen({ host, port: p });
      const address = app.server.address();
      return typeof address === "object" && address ? address.port : p;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EADDRINUSE" || p === ports[ports.length - 1]) throw e;
    }
  }
  throw new Error("no port available");
}

export async function startServer(config: Config, version: string, logger: FastifyServerOptions["logger"] = false): Promise<RunningServer> {
  const registry = new Registry(config);
  // The pool is built before the app that owns the logger; the callback reads it late.
  const logs: { log?: FastifyInstance["log"] } = {};
  const pool = createModelPool(config, registry, {
    onConvertProgress: (model, p) => {
      if (p.index === 1) logs.log?.info({ model }, "converting SafeTensors model to GGUF (first request; cached afterwards)");
      if (p.index === p.total) logs.log?.info({ model, tensors: p.total, bytes: p.bytesRead }, "conversion finished");
    },
    onEvent: (e) => (e.note ? logs.log?.warn(e, "model loaded without its draft model") : logs.log?.info(e, e.type === "load" ? "model loaded" : "model unloaded")),
    onProbe: (e) => (e.ok ? logs.log?.info(e, "model file passed its probe") : logs.log?.warn(e, "model file refused: its probe failed")),
  });
  try {
    pool.checkDraftModel();
  } catch (e) {
    await pool.close();
    throw e;
  }
  const rescanner = new ModelRescanner(registry, {
    watch: config.watchModels,
    intervalMs: config.rescanIntervalMs,
    maxDepth: config.maxScanDepth,
    onRescan: async ({ added, removed }) => {
      if (added.length > 0 || removed.length > 0) logs.log?.info({ added, removed }, "models changed on disk");
      const retired = await pool.retireStale();
      if (retired.length > 0) logs.log?.info({ models: retired }, "models whose files went or changed are unloaded once idle");
    },
    onError: (e) => logs.log?.warn({ err: e }, "model rescan or folder watch failed"),
  });
  const ctx: ServerContext = { registry, rescanner, pool, config, version, startedAt: Date.now() };
  ctx.metrics = new ServerMetrics(ctx);
  const app = await buildApp(ctx, { logger });
  logs.log = app.log;
  const port = await listen(app, config.host, config.port, config.bindAuto);
  rescanner.start();
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      rescanner.close();
      const drained = app.close();
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, config.drainTimeoutMs)));
      try {
        if ((await Promise.race([drained.then(() => "drained"), deadline.then(() => "deadline")])) === "deadline") {
          await pool.stopGenerations();
          app.server.closeAllConnections();
          await drained;
        }
      } finally {
        clearTimeout(timer);
        await pool.close();
      }
    })());
  return { app, ctx, url: `http://${host}:${port}`, port, close };
}
