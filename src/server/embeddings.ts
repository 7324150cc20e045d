import type { Token } from "node-llama-cpp";
import { type EmbeddingInput, checkEmbeddingInputs, fitEmbeddingInputs, l2Normalized } from "../engine/embedding-input.js";
import { InputTooLongError } from "../engine/errors.js";
import type { ServerContext } from "./context.js";
import { invalidParam } from "./errors.js";

export interface EmbeddingRun {
  model: string;
  inputs: EmbeddingInput[];
  /** The field the inputs came in (named by errors): "input" or "prompt". */
  param: string;
  /** Cut inputs longer than the context instead of refusing them (Ollama's `truncate`). */
  truncate: boolean;
  /** A bound below the context on each input's tokens (Ollama's `num_ctx`). */
  contextLimit?: number;
  /** The vector length asked for; only the model's own is accepted (no model declares Matryoshka training). */
  dimensions?: number;
  /** Scale each vector to length 1. */
  normalize: boolean;
  keepAliveMs?: number;
  signal: AbortSignal;
}

export interface EmbeddingResult {
  /** The served model's name. */
  model: string;
  vectors: number[][];
  /** Tokens embedded, over all inputs (after any cut). */
  promptTokens: number;
  loadMs: number;
  totalMs: number;
}

/**
 * Runs an embedding request for any protocol: model-free checks, then the model (loaded or
 * found), then every per-model check (vocabulary, context, dimensions, pooling) before the first
 * decode; one pooled vector per input, in order.
 */
export async function runEmbeddings(ctx: ServerContext, run: EmbeddingRun): Promise<EmbeddingResult> {
  const started = performance.now();
  checkEmbeddingInputs(run.inputs, run.param);
  return ctx.pool.use(
    run.model,
    async (loaded) => {
      const loadMs = performance.now() - started;
      const embedder = loaded.embeddings;
      if (run.dimensions !== undefined && run.dimensions !== embedder.dimensions) {
        throw invalidParam("dimensions", `'dimensions' ${run.dimensions}: "${loaded.spec.name}" gives ${embedder.dimensions}-dimensional vectors and cannot shorten them (its metadata declares no Matryoshka training); omit the field or send ${embedder.dimensions}`, "invalid_value");
      }
      const limit = Math.min(run.contextLimit ?? embedder.contextSize, embedder.contextSize);
      // Tokenizing is a synchronous native call: an input proven too long is refused (or cut to
      // the part truncation keeps) before it is tokenized.
      const tokenized: Token[][] = [];
      for (const [i, input] of run.inputs.entries()) {
        if (input.kind !== "text") {
          tokenized.push(input.tokens as Token[]);
          continue;
        }
        const atLeast = loaded.minTokens(input.text);
        if (atLeast > limit && !run.truncate) throw new InputTooLongError(i, atLeast, limit);
        tokenized.push(await embedder.tokenize(run.truncate ? loaded.prefixHolding(input.text, limit) : input.text));
      }
      const inputs = fitEmbeddingInputs(tokenized, {
        limit,
        truncate: run.truncate,
        endToken: embedder.endToken,
        vocabSize: loaded.spec.summary?.vocabSize ?? Number.POSITIVE_INFINITY,
        param: run.param,
      });
      const vectors = await embedder.embed(inputs, run.signal);
      return {
        model: loaded.spec.name,
        vectors: vectors.map((v) => (run.normalize ? l2Normalized(v) : Array.from(v))),
        promptTokens: inputs.reduce((n, t) => n + t.length, 0),
        loadMs,
        totalMs: performance.now() - started,
      };
    },
    run.keepAliveMs,
    "embed",
  );
}
