import type { FastifyInstance } from "fastify";
import { loadedCpuLibrary } from "../../engine/cpu-library.js";
import { poolThreadReserve } from "../../engine/pool-reserve.js";
import type { ServerContext } from "../context.js";

export function registerHealth(app: FastifyInstance, ctx: ServerContext): void {
  const health = async () => {
    const loaded = ctx.pool.info();
    const reserve = poolThreadReserve();
    return {
      status: "ok",
      version: ctx.version,
      uptime_seconds: Math.round((Date.now() - ctx.startedAt) / 100) / 10,
      models: {
        discovered: ctx.registry.all().length,
        available: ctx.pool.servable().length,
        loaded: loaded.length,
      },
      // Rescans of the model folders (file events, the periodic timer, POST /refresh).
      discovery: { rescans: ctx.rescanner.count, watched_folders: ctx.rescanner.watched().length, rescan_interval_ms: ctx.config.rescanIntervalMs },
      // Crash isolation (docs/security.md): model files refused because they made a probe child die.
      isolation: { enabled: ctx.config.isolation, probes_run: ctx.pool.probesRun, unusable: ctx.pool.unusable() },
      in_flight: ctx.pool.inFlight,
      // What this process computes with. The pool size is what libuv read at its first job (the
      // `shimmy` launcher sets 2 unless the user chose; libuv's default is 4); all but one of its
      // threads are parked while a model is loaded (engine/pool-reserve.ts). cpu_library: which of
      // the prebuilt binary's CPU libraries llama.cpp picked (Linux, once a model has loaded).
      compute: { build: ctx.config.nativeBuild ? "native" : "prebuilt", cpu_library: loadedCpuLibrary() ?? null, threads: ctx.config.threads, threads_alternative: ctx.config.threadsAlternative ?? null, batch_threads: ctx.config.batchThreads, libuv_threadpool_size: reserve.poolSize, libuv_threads_parked: reserve.parked },
      limits: { max_loaded_models: ctx.config.maxLoadedModels, memory_budget_bytes: ctx.config.memoryBudgetBytes, max_queue: ctx.config.maxQueue, keep_alive_ms: ctx.config.keepAliveMs },
      loaded: loaded.map((m) => ({
        name: m.name,
        context_per_slot: m.contextSize,
        slots: m.slots,
        busy_slots: m.busySlots,
        queued: m.queued,
        in_flight: m.pins,
        memory_bytes: m.memoryBytes,
        one_token_threads: m.oneTokenThreads.current,
        one_token_step_ms: Object.fromEntries([...m.oneTokenThreads.measuredMs].map(([threads, ms]) => [threads, Math.round(ms * 100) / 100])),
        expires_at: m.expiresAt === null ? null : new Date(m.expiresAt).toISOString(),
      })),
    };
  };
  app.get("/health", health);
  app.get("/v1/health", health);
}
