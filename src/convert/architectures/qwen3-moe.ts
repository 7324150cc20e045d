import { llamaLikeConverter, u32 } from "./decoder.js";
import { ATTENTION_OUTPUT, NORMS, QK_NORMS, qkvProjections } from "./llama-layers.js";
import { expertLayer, type MoeKeys, moeDims, moeMetadata, refuseQwenMoeVariants, requireTopKNorm } from "./moe.js";
import type { HfConfig } from "../../formats/hf-folder.js";

const KEYS: MoeKeys = { experts: "num_experts", used: "num_experts_per_tok", expertFfn: "moe_intermediate_size" };

function qwen3Moe(c: HfConfig, configPath: string) {
  refuseQwenMoeVariants(c, configPath);
  // HF's default is false, but every released Qwen3-MoE sets it, and llama.cpp always renormalises.
  requireTopKNorm(c, true, false, configPath);
  return moeDims(c, KEYS, configPath);
}

/** Qwen3-MoE: Qwen3's attention (q/k norms, explicit head_dim) with routed SwiGLU experts in every layer. */
export const qwen3MoeConverter = llamaLikeConverter(
  "qwen3moe",
  ["Qwen3MoeForCausalLM"],
  (c, configPath) => [
    ...qkvProjections(false, "weight"),
    ATTENTION_OUTPUT,
    ...QK_NORMS,
    ...expertLayer({ router: "mlp.gate.weight", gate: "mlp.experts.{e}.gate_proj.weight", up: "mlp.experts.{e}.up_proj.weight", down: "mlp.experts.{e}.down_proj.weight" }, qwen3Moe(c, configPath)),
    ...NORMS,
  ],
  (d, c, configPath) => [
    ["qwen3moe.attention.key_length", u32(d.headDim)],
    ["qwen3moe.attention.value_length", u32(d.headDim)],
    ...moeMetadata("qwen3moe", qwen3Moe(c, configPath), true),
  ],
);
