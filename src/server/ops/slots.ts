import type { FastifyInstance } from "fastify";
import type { ServerContext } from "../context.js";

/** Per-model slot state (like llama-server's /slots): who is busy, what each slot has cached, the queue. */
export function registerSlots(app: FastifyInstance, ctx: ServerContext): void {
  app.get("/slots", async () => ({
    models: ctx.pool.slotInfo().map((m) => ({
      model: m.name,
      context_per_slot: m.contextSize,
      queued: m.queued,
      slots: m.slots.map((s) => ({ id: s.id, busy: s.busy, cached_tokens: s.cachedTokens })),
    })),
  }));
}
