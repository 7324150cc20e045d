import type { HfConfig } from "../../formats/hf-folder.js";
import { ConvertError } from "../errors.js";
import { llamaLikeConverter, u32 } from "./decoder.js";
import { ATTENTION_OUTPUT, NORMS, qkvProjections } from "./llama-layers.js";
import { expertLayer, type MoeKeys, moeDims, moeMetadata, positiveInteger, refuseQwenMoeVariants, requireTopKNorm } from "./moe.js";
import type { ArchitectureConverter } from "./types.js";

const KEYS: MoeKeys = { experts: "num_experts", used: "num_experts_per_tok", expertFfn: "moe_intermediate_size" };

function qwen2Moe(c: HfConfig, configPath: string) {
  refuseQwenMoeVariants(c, configPath);
  requireTopKNorm(c, false, false, configPath);
  return { ...moeDims(c, KEYS, configPath), sharedFfn: positiveInteger(c, "shared_expert_intermediate_size", configPath) };
}

const base = llamaLikeConverter(
  "qwen2moe",
  ["Qwen2MoeForCausalLM"],
  (c, configPath) => {
    const m = qwen2Moe(c, configPath);
    return [
      ...qkvProjections(false, "weight"),
      ...qkvProjections(false, "bias"),
      ATTENTION_OUTPUT,
      ...expertLayer({ router: "mlp.gate.weight", gate: "mlp.experts.{e}.gate_proj.weight", up: "mlp.experts.{e}.up_proj.weight", down: "mlp.experts.{e}.down_proj.weight" }, m),
      { hf: "mlp.shared_expert.gate_proj.weight", gguf: "ffn_gate_shexp.weight", shape: (d) => [m.sharedFfn, d.hidden] },
      { hf: "mlp.shared_expert.up_proj.weight", gguf: "ffn_up_shexp.weight", shape: (d) => [m.sharedFfn, d.hidden] },
      { hf: "mlp.shared_expert.down_proj.weight", gguf: "ffn_down_shexp.weight", shape: (d) => [d.hidden, m.sharedFfn] },
      { hf: "mlp.shared_expert_gate.weight", gguf: "ffn_gate_inp_shexp.weight", shape: (d) => [1, d.hidden] },
      ...NORMS,
    ];
  },
  (_d, c, configPath) => {
    const m = qwen2Moe(c, configPath);
    return [...moeMetadata("qwen2moe", m, true), ["qwen2moe.expert_shared_feed_forward_length", u32(m.sharedFfn)]];
  },
);

/**
 * Qwen2-MoE (Qwen1.5-MoE, Qwen2-57B-A14B): Qwen2 attention with biases; routed experts (top-k
 * weights not renormalised) plus a shared expert scaled by sigmoid(shared_expert_gate · x).
 */
export const qwen2MoeConverter: ArchitectureConverter = {
  ...base,
  plan(c, tensors, configPath) {
    // llama.cpp's qwen2moe graph requires its own output.weight.
    if (c.tieWordEmbeddings) throw new ConvertError(configPath, "Qwen2MoeForCausalLM with tie_word_embeddings is not supported (llama.cpp's qwen2moe graph needs a separate lm_head)");
    // The shared expert's gate is one row; llama.cpp reads it as a vector.
    return base.plan(c, tensors, configPath).map((p) => (p.name.endsWith(".ffn_gate_inp_shexp.weight") ? { ...p, shape: [p.shape[1]!], keepF32: true } : p));
  },
};
