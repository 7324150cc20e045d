import { ConvertError } from "../errors.js";
import { decoderDims, decoderMetadata, type LayerTensorSpec, planDecoder, u32 } from "./decoder.js";
import { ATTENTION_OUTPUT, NORMS } from "./llama-layers.js";
import type { ArchitectureConverter } from "./types.js";

/** Phi-3 / Phi-3.5 mini: fused qkv_proj and gate_up_proj (llama.cpp splits them at run time); NeoX RoPE. */
const layer: LayerTensorSpec[] = [
  { hf: "self_attn.qkv_proj.weight", gguf: "attn_qkv.weight", shape: (d) => [(d.heads + 2 * d.kvHeads) * d.headDim, d.hidden] },
  ATTENTION_OUTPUT,
  // HF chunks gate_up into [gate; up], the order llama.cpp's fused SwiGLU expects.
  { hf: "mlp.gate_up_proj.weight", gguf: "ffn_up.weight", shape: (d) => [2 * d.ffn, d.hidden] },
  { hf: "mlp.down_proj.weight", gguf: "ffn_down.weight", shape: (d) => [d.hidden, d.ffn] },
  ...NORMS,
];

function checkRope(rs: Record<string, unknown> | undefined, configPath: string): void {
  if (rs && String(rs.type ?? rs.rope_type) !== "default") {
    throw new ConvertError(configPath, `Phi-3 rope_scaling "${String(rs.type ?? rs.rope_type)}" (long-context variants) is not supported by the converter yet`);
  }
}

export const phi3Converter: ArchitectureConverter = {
  hfArchitectures: ["Phi3ForCausalLM"],
  ggufArchitecture: "phi3",
  metadata(c, configPath) {
    checkRope(c.ropeScaling, configPath);
    const d = decoderDims(c, configPath);
    const partial = typeof c.raw.partial_rotary_factor === "number" ? c.raw.partial_rotary_factor : 1;
    const m = decoderMetadata("phi3", c, d, Math.floor(d.headDim * partial));
    const original = c.raw.original_max_position_embeddings;
    m.set("phi3.rope.scaling.original_context_length", u32(typeof original === "number" ? original : d.context));
    if (typeof c.raw.sliding_window === "number") m.set("phi3.attention.sliding_window", u32(c.raw.sliding_window));
    return m;
  },
  plan(c, tensors, configPath) {
    checkRope(c.ropeScaling, configPath);
    return planDecoder(c, decoderDims(c, configPath), tensors, configPath, layer);
  },
};
