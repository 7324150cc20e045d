import type { HfConfig } from "../../formats/hf-folder.js";
import { ConvertError } from "../errors.js";
import { llamaLikeConverter } from "./decoder.js";
import { ATTENTION_OUTPUT, NORMS, qkvProjections } from "./llama-layers.js";
import { expertLayer, type MoeKeys, moeDims, moeMetadata } from "./moe.js";

const KEYS: MoeKeys = { experts: "num_local_experts", used: "num_experts_per_tok" };

function mixtral(c: HfConfig, configPath: string) {
  const window = c.raw.sliding_window;
  // llama.cpp's llama graph attends to the whole context; a window that binds would change answers.
  if (typeof window === "number" && window < (c.maxPositionEmbeddings ?? Infinity)) {
    throw new ConvertError(configPath, `MixtralForCausalLM with sliding_window ${window} is not supported (llama.cpp's llama graph has no sliding window)`);
  }
  return moeDims(c, KEYS, configPath);
}

/**
 * Mixtral: llama.cpp's "llama" architecture with experts (intermediate_size wide, top-k weights
 * renormalised); q/k rows permuted to interleaved RoPE as for Llama.
 */
export const mixtralConverter = llamaLikeConverter(
  "llama",
  ["MixtralForCausalLM"],
  (c, configPath) => [
    ...qkvProjections(true, "weight"),
    ATTENTION_OUTPUT,
    ...expertLayer({ router: "block_sparse_moe.gate.weight", gate: "block_sparse_moe.experts.{e}.w1.weight", up: "block_sparse_moe.experts.{e}.w3.weight", down: "block_sparse_moe.experts.{e}.w2.weight" }, mixtral(c, configPath)),
    ...NORMS,
  ],
  (_d, c, configPath) => moeMetadata("llama", mixtral(c, configPath), false),
);
