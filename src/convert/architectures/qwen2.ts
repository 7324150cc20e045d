import { llamaLikeConverter } from "./decoder.js";
import { ATTENTION_OUTPUT, NORMS, qkvProjections, SWIGLU_MLP } from "./llama-layers.js";

/** Qwen2 / Qwen2.5: llama layout with q/k/v biases; NeoX RoPE in llama.cpp, so no permutation. */
export const qwen2Converter = llamaLikeConverter("qwen2", ["Qwen2ForCausalLM"], [
  ...qkvProjections(false, "weight"),
  ...qkvProjections(false, "bias"),
  ATTENTION_OUTPUT,
  ...SWIGLU_MLP,
  ...NORMS,
]);
