import { decoderDims, decoderMetadata, type LayerTensorSpec, planDecoder, ropeScaling, u32 } from "./decoder.js";
import type { ArchitectureConverter } from "./types.js";

/** Qwen3 (dense): no qkv biases, per-head RMSNorm on q and k; explicit head_dim; NeoX RoPE. */
const layer: LayerTensorSpec[] = [
  { hf: "self_attn.q_proj.weight", gguf: "attn_q.weight", shape: (d) => [d.heads * d.headDim, d.hidden] },
  { hf: "self_attn.k_proj.weight", gguf: "attn_k.weight", shape: (d) => [d.kvHeads * d.headDim, d.hidden] },
  { hf: "self_attn.v_proj.weight", gguf: "attn_v.weight", shape: (d) => [d.kvHeads * d.headDim, d.hidden] },
  { hf: "self_attn.o_proj.weight", gguf: "attn_output.weight", shape: (d) => [d.hidden, d.heads * d.headDim] },
  { hf: "self_attn.q_norm.weight", gguf: "attn_q_norm.weight", shape: (d) => [d.headDim] },
  { hf: "self_attn.k_norm.weight", gguf: "attn_k_norm.weight", shape: (d) => [d.headDim] },
  { hf: "mlp.gate_proj.weight", gguf: "ffn_gate.weight", shape: (d) => [d.ffn, d.hidden] },
  { hf: "mlp.up_proj.weight", gguf: "ffn_up.weight", shape: (d) => [d.ffn, d.hidden] },
  { hf: "mlp.down_proj.weight", gguf: "ffn_down.weight", shape: (d) => [d.hidden, d.ffn] },
  { hf: "input_layernorm.weight", gguf: "attn_norm.weight", shape: (d) => [d.hidden] },
  { hf: "post_attention_layernorm.weight", gguf: "ffn_norm.weight", shape: (d) => [d.hidden] },
];

export const qwen3Converter: ArchitectureConverter = {
  hfArchitectures: ["Qwen3ForCausalLM"],
  ggufArchitecture: "qwen3",
  metadata(c, configPath) {
    const d = decoderDims(c, configPath);
    const m = decoderMetadata("qwen3", c, d);
    // Qwen3's head_dim is independent of hidden/heads; llama.cpp reads it from key/value_length.
    m.set("qwen3.attention.key_length", u32(d.headDim));
    m.set("qwen3.attention.value_length", u32(d.headDim));
    for (const [k, v] of ropeScaling("qwen3", c, d, configPath).metadata) m.set(k, v);
    return m;
  },
  plan(c, tensors, configPath) {
    const d = decoderDims(c, configPath);
    return planDecoder(c, d, tensors, configPath, layer, ropeScaling("qwen3", c, d, configPath).tensors);
  },
};
