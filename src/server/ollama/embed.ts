import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ServerContext } from "../context.js";
import { abortOnDisconnect } from "../disconnect.js";
import { type EmbeddingResult, type EmbeddingRun, runEmbeddings } from "../embeddings.js";
import { logIgnoredOnce } from "../ignored-fields.js";
import { type OllamaOptions, keepAliveMs } from "./request.js";
import { ns } from "./respond.js";
import { embedBody, embeddingsBody } from "./schemas.js";

interface EmbedBody {
  model: string;
  input: string | string[];
  truncate?: boolean | null;
  dimensions?: number | null;
  keep_alive?: number | string | null;
  options?: OllamaOptions | null;
}

interface EmbeddingsBody {
  model: string;
  prompt: string;
  keep_alive?: number | string | null;
  options?: OllamaOptions | null;
}

/** Options other than num_ctx steer sampling or the runner: they do not change a vector. */
function embeddingOptions(request: FastifyRequest, options: OllamaOptions | null | undefined): Pick<EmbeddingRun, "contextLimit"> {
  const o = options ?? {};
  logIgnoredOnce(request.log, "ollama-embed", o, Object.keys(o).filter((k) => k !== "num_ctx"));
  return { contextLimit: o.num_ctx ?? undefined };
}

/**
 * Ollama's embedding routes, given a model resolver (Ollama names). `/api/embed` answers
 * L2-normalised vectors, as Ollama does; the legacy `/api/embeddings` the raw pooled vector.
 */
export function registerOllamaEmbed(api: FastifyInstance, ctx: ServerContext, resolveName: (name: string) => string): void {
  const run = (reply: FastifyReply, fields: Omit<EmbeddingRun, "signal">): Promise<EmbeddingResult> =>
    runEmbeddings(ctx, { ...fields, model: resolveName(fields.model), signal: abortOnDisconnect(reply).signal });

  api.post<{ Body: EmbedBody }>("/embed", { schema: { body: embedBody } }, async (request, reply) => {
    const body = request.body;
    const inputs = typeof body.input === "string" ? [body.input] : body.input;
    const result = await run(reply, {
      model: body.model,
      inputs: inputs.map((text) => ({ kind: "text", text })),
      param: "input",
      truncate: body.truncate ?? true,
      dimensions: body.dimensions ?? undefined,
      normalize: true,
      keepAliveMs: keepAliveMs(body.keep_alive),
      ...embeddingOptions(request, body.options),
    });
    return { model: result.model, embeddings: result.vectors, total_duration: ns(result.totalMs), load_duration: ns(result.loadMs), prompt_eval_count: result.promptTokens };
  });

  api.post<{ Body: EmbeddingsBody }>("/embeddings", { schema: { body: embeddingsBody } }, async (request, reply) => {
    const body = request.body;
    const result = await run(reply, {
      model: body.model,
      inputs: [{ kind: "text", text: body.prompt }],
      param: "prompt",
      truncate: false,
      normalize: false,
      keepAliveMs: keepAliveMs(body.keep_alive),
      ...embeddingOptions(request, body.options),
    });
    return { embedding: result.vectors[0] };
  });
}
