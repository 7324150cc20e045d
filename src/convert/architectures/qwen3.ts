import { llamaLikeConverter, u32 } from "./decoder.js";
import { ATTENTION_OUTPUT, NORMS, QK_NORMS, qkvProjections, SWIGLU_MLP } from "./llama-layers.js";

/** Qwen3 (dense): no qkv biases, per-head RMSNorm on q and k, explicit head_dim; NeoX RoPE. */
export const qwen3Converter = llamaLikeConverter(
  "qwen3",
  ["Qwen3ForCausalLM"],
  [
    ...qkvProjections(false, "weight"),
    ATTENTION_OUTPUT,
    ...QK_NORMS,
    ...SWIGLU_MLP,
    ...NORMS,
  ],
  // Qwen3's head_dim is independent of hidden/heads; llama.cpp reads it from key/value_length.
  (d) => [
    ["qwen3.attention.key_length", u32(d.headDim)],
    ["qwen3.attention.value_length", u32(d.headDim)],
  ],
);
