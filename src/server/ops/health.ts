import type { FastifyInstance } from "fastify";
import { servableModels } from "../../engine/servability.js";
import type { ServerContext } from "../context.js";

export function registerHealth(app: FastifyInstance, ctx: ServerContext): void {
  const health = async () => {
    const loaded = ctx.pool.info();
    return {
      status: "ok",
      version: ctx.version,
      uptime_seconds: Math.round((Date.now() - ctx.startedAt) / 100) / 10,
      models: {
        discovered: ctx.registry.all().length,
        available: servableModels(ctx.registry.all()).length,
        loaded: loaded.length,
      },
      in_flight: ctx.pool.inFlight,
      limits: { max_loaded_models: ctx.config.maxLoadedModels, memory_budget_bytes: ctx.config.memoryBudgetBytes, max_queue: ctx.config.maxQueue, keep_alive_ms: ctx.config.keepAliveMs },
      loaded: loaded.map((m) => ({
        name: m.name,
        context_per_slot: m.contextSize,
        slots: m.slots,
        busy_slots: m.busySlots,
        queued: m.queued,
        in_flight: m.pins,
        memory_bytes: m.memoryBytes,
        expires_at: m.expiresAt === null ? null : new Date(m.expiresAt).toISOString(),
      })),
    };
  };
  app.get("/health", health);
  app.get("/v1/health", health);
}
