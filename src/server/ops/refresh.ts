import type { FastifyInstance } from "fastify";
import type { ServerContext } from "../context.js";

/**
 * `POST /refresh` (and `/v1/refresh`): rescans the model folders now — without waiting for a
 * file event or the periodic rescan — and answers the model list as it is afterwards. Neither
 * llama-server nor Ollama has such a route; the name is Shimmy's own.
 */
export function registerRefresh(app: FastifyInstance, ctx: ServerContext): void {
  const refresh = async () => {
    const started = performance.now();
    const { added, removed, result } = await ctx.rescanner.rescan();
    const servable = new Set(ctx.pool.servable().map((m) => m.name));
    return {
      models: result.models.map((m) => ({
        name: m.name,
        source: m.source,
        format: m.format,
        path: m.files[0] ?? null,
        servable: servable.has(m.name),
        error: m.error ?? null,
      })),
      added,
      removed,
      elapsed_ms: Math.round(performance.now() - started),
    };
  };
  app.post("/refresh", refresh);
  app.post("/v1/refresh", refresh);
}
