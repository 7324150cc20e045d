import { llamaLikeConverter } from "./decoder.js";
import { ATTENTION_OUTPUT, NORMS, qkvProjections, SWIGLU_MLP } from "./llama-layers.js";

/**
 * Llama 2/3/3.x, TinyLlama, SmolLM, Mistral: llama.cpp's "llama" architecture. q/k rows are
 * permuted to llama.cpp's interleaved RoPE; attention biases (rare) are optional.
 */
export const llamaConverter = llamaLikeConverter("llama", ["LlamaForCausalLM", "MistralForCausalLM"], [
  ...qkvProjections(true, "weight"),
  ATTENTION_OUTPUT,
  ...qkvProjections(true, "bias", true),
  { hf: "self_attn.o_proj.bias", gguf: "attn_output.bias", shape: (d) => [d.hidden], optional: true },
  ...SWIGLU_MLP,
  ...NORMS,
]);
