import type { FastifyInstance } from "fastify";
import type { ModelSpec } from "../../discovery/types.js";
import type { ServerContext } from "../context.js";
import { ApiError } from "../errors.js";

/** The context a request will get: the loaded value, else what loading will choose. */
export function effectiveContext(ctx: ServerContext, m: ModelSpec): number | null {
  const loaded = ctx.pool.info().find((i) => i.name === m.name);
  if (loaded) return loaded.contextSize;
  if (ctx.config.ctxSize) return ctx.config.ctxSize;
  return m.contextLength ? Math.min(m.contextLength, ctx.config.ctxCap) : null;
}

function modelJson(ctx: ServerContext, m: ModelSpec) {
  return {
    id: m.name,
    object: "model",
    created: Math.floor((m.modifiedAt?.getTime() ?? ctx.startedAt) / 1000),
    owned_by: m.source === "ollama" ? "ollama" : "shimmy",
    context_length: effectiveContext(ctx, m),
    capabilities: m.capabilities,
    meta: {
      format: m.format,
      architecture: m.architecture ?? null,
      parameters: m.parameters ?? null,
      quantization: m.quantization ?? null,
      size_bytes: m.sizeBytes,
      n_ctx_train: m.contextLength ?? null,
      chat_template: m.summary?.hasChatTemplate ? "model" : "fallback",
      lora: m.lora ?? null,
      loaded: ctx.pool.isLoaded(m.name),
      parallel_slots: ctx.config.parallel,
    },
  };
}

export function registerModels(app: FastifyInstance, ctx: ServerContext): void {
  // Only models that can answer requests are listed (not those known to crash llama.cpp); `shimmy list` shows the rest.
  app.get("/v1/models", async () => ({ object: "list", data: ctx.pool.servable().map((m) => modelJson(ctx, m)) }));
  app.get<{ Params: { "*": string } }>("/v1/models/*", async (request) => {
    const id = request.params["*"];
    const spec = ctx.registry.find(id);
    if (!spec || !ctx.pool.servable().includes(spec)) throw new ApiError(404, `The model '${id}' does not exist`, "invalid_request_error", "model", "model_not_found");
    return modelJson(ctx, spec);
  });
}
