import { decoderDims, decoderMetadata, type LayerTensorSpec, planDecoder, ropeScaling } from "./decoder.js";
import type { ArchitectureConverter } from "./types.js";

/** Qwen2 / Qwen2.5: llama layout with q/k/v biases; NeoX RoPE in llama.cpp, so no permutation. */
const layer: LayerTensorSpec[] = [
  { hf: "self_attn.q_proj.weight", gguf: "attn_q.weight", shape: (d) => [d.heads * d.headDim, d.hidden] },
  { hf: "self_attn.k_proj.weight", gguf: "attn_k.weight", shape: (d) => [d.kvHeads * d.headDim, d.hidden] },
  { hf: "self_attn.v_proj.weight", gguf: "attn_v.weight", shape: (d) => [d.kvHeads * d.headDim, d.hidden] },
  { hf: "self_attn.q_proj.bias", gguf: "attn_q.bias", shape: (d) => [d.heads * d.headDim] },
  { hf: "self_attn.k_proj.bias", gguf: "attn_k.bias", shape: (d) => [d.kvHeads * d.headDim] },
  { hf: "self_attn.v_proj.bias", gguf: "attn_v.bias", shape: (d) => [d.kvHeads * d.headDim] },
  { hf: "self_attn.o_proj.weight", gguf: "attn_output.weight", shape: (d) => [d.hidden, d.heads * d.headDim] },
  { hf: "mlp.gate_proj.weight", gguf: "ffn_gate.weight", shape: (d) => [d.ffn, d.hidden] },
  { hf: "mlp.up_proj.weight", gguf: "ffn_up.weight", shape: (d) => [d.ffn, d.hidden] },
  { hf: "mlp.down_proj.weight", gguf: "ffn_down.weight", shape: (d) => [d.hidden, d.ffn] },
  { hf: "input_layernorm.weight", gguf: "attn_norm.weight", shape: (d) => [d.hidden] },
  { hf: "post_attention_layernorm.weight", gguf: "ffn_norm.weight", shape: (d) => [d.hidden] },
];

export const qwen2Converter: ArchitectureConverter = {
  hfArchitectures: ["Qwen2ForCausalLM"],
  ggufArchitecture: "qwen2",
  metadata(c, configPath) {
    const d = decoderDims(c, configPath);
    const m = decoderMetadata("qwen2", c, d);
    for (const [k, v] of ropeScaling("qwen2", c, d, configPath).metadata) m.set(k, v);
    return m;
  },
  plan(c, tensors, configPath) {
    const d = decoderDims(c, configPath);
    return planDecoder(c, d, tensors, configPath, layer, ropeScaling("qwen2", c, d, configPath).tensors);
  },
};
