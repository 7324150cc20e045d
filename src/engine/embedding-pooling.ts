import { metaNumber, metaString, readGguf } from "../formats/gguf.js";

/** llama.cpp's `enum llama_pooling_type` values as GGUF's `<arch>.pooling_type` stores them. */
const POOLING_NAMES = ["none", "mean", "cls", "last", "rank"] as const;
export type Pooling = (typeof POOLING_NAMES)[number];
const MEAN = 1;

/** How a model's embeddings are pooled: what its file declares, else (a generative model) mean. */
export interface PoolingPlan {
  pooling: Pooling;
  /** node-llama-cpp `metadataOverrides` that make llama.cpp pool that way; absent = the file's own. */
  overrides?: Record<string, Record<string, number>>;
}

/**
 * Reads `<arch>.pooling_type` from a GGUF's header (arrays skipped). A file without one (every
 * generative model) is loaded with mean pooling, as Ollama embeds generative models: llama.cpp
 * reads the key only when a context asks for embeddings, so generation is unchanged.
 */
export function poolingPlan(ggufPath: string): PoolingPlan {
  const file = readGguf(ggufPath, { maxArrayLength: 0 });
  const arch = metaString(file, "general.architecture");
  const declared = arch === undefined ? undefined : metaNumber(file, `${arch}.pooling_type`);
  if (declared === undefined) {
    return { pooling: "mean", overrides: arch === undefined ? undefined : { [arch]: { pooling_type: MEAN } } };
  }
  return { pooling: POOLING_NAMES[declared] ?? "none" };
}

/** Why a model's pooling gives no one vector per input (llama-server refuses the same), or undefined. */
export function unembeddableReason(pooling: Pooling): string | undefined {
  if (pooling === "none") return "its pooling type is none (one vector per token), which these APIs cannot return";
  if (pooling === "rank") return "it is a reranking model (pooling type rank): it scores pairs, it does not embed";
  return undefined;
}
