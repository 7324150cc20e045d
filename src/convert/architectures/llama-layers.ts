import type { DecoderDims, LayerTensorSpec } from "./decoder.js";

/** Per-layer tensors shared by the llama-like families (HF name → GGUF name, HF shape). */

export const NORMS: LayerTensorSpec[] = [
  { hf: "input_layernorm.weight", gguf: "attn_norm.weight", shape: (d) => [d.hidden] },
  { hf: "post_attention_layernorm.weight", gguf: "ffn_norm.weight", shape: (d) => [d.hidden] },
];

export const SWIGLU_MLP: LayerTensorSpec[] = [
  { hf: "mlp.gate_proj.weight", gguf: "ffn_gate.weight", shape: (d) => [d.ffn, d.hidden] },
  { hf: "mlp.up_proj.weight", gguf: "ffn_up.weight", shape: (d) => [d.ffn, d.hidden] },
  { hf: "mlp.down_proj.weight", gguf: "ffn_down.weight", shape: (d) => [d.hidden, d.ffn] },
];

export const ATTENTION_OUTPUT: LayerTensorSpec = { hf: "self_attn.o_proj.weight", gguf: "attn_output.weight", shape: (d) => [d.hidden, d.heads * d.headDim] };

/** q/k/v projections; `permute` for llama.cpp's interleaved RoPE (llama), not for NeoX families. */
export function qkvProjections(permute: boolean, suffix: "weight" | "bias", optional = false): LayerTensorSpec[] {
  // Weights are [rows, hidden]; biases are [rows].
  const shape = (rows: (d: DecoderDims) => number) => (d: DecoderDims) => (suffix === "weight" ? [rows(d), d.hidden] : [rows(d)]);
  return [
    { hf: `self_attn.q_proj.${suffix}`, gguf: `attn_q.${suffix}`, shape: shape((d) => d.heads * d.headDim), optional, permuteHeads: permute ? (d) => d.heads : undefined },
    { hf: `self_attn.k_proj.${suffix}`, gguf: `attn_k.${suffix}`, shape: shape((d) => d.kvHeads * d.headDim), optional, permuteHeads: permute ? (d) => d.kvHeads : undefined },
    { hf: `self_attn.v_proj.${suffix}`, gguf: `attn_v.${suffix}`, shape: shape((d) => d.kvHeads * d.headDim), optional },
  ];
}

/** Per-head RMSNorm on q and k (Qwen3, Gemma 3). */
export const QK_NORMS: LayerTensorSpec[] = [
  { hf: "self_attn.q_norm.weight", gguf: "attn_q_norm.weight", shape: (d) => [d.headDim] },
  { hf: "self_attn.k_norm.weight", gguf: "attn_k_norm.weight", shape: (d) => [d.headDim] },
];
