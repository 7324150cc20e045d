import type { HfConfig } from "../../formats/hf-folder.js";
import { ConvertError } from "../errors.js";
import { type DecoderDims, decoderDims, decoderMetadata, f32, type LayerTensorSpec, planDecoder, u32 } from "./decoder.js";
import { ATTENTION_OUTPUT, NORMS } from "./llama-layers.js";
import type { ArchitectureConverter, TensorPlan } from "./types.js";

/** Phi-3 / Phi-3.5 mini / Phi-4-mini: fused qkv_proj and gate_up_proj (llama.cpp splits them at run time); NeoX RoPE. */
const layer: LayerTensorSpec[] = [
  { hf: "self_attn.qkv_proj.weight", gguf: "attn_qkv.weight", shape: (d) => [(d.heads + 2 * d.kvHeads) * d.headDim, d.hidden] },
  ATTENTION_OUTPUT,
  // HF chunks gate_up into [gate; up], the order llama.cpp's fused SwiGLU expects.
  { hf: "mlp.gate_up_proj.weight", gguf: "ffn_up.weight", shape: (d) => [2 * d.ffn, d.hidden] },
  { hf: "mlp.down_proj.weight", gguf: "ffn_down.weight", shape: (d) => [d.hidden, d.ffn] },
  ...NORMS,
];

/** LongRoPE: per-frequency divisors for short and long contexts, and the attention (cos/sin) scale. */
interface LongRope {
  original: number;
  short: Float32Array;
  long: Float32Array;
  attnFactor: number;
}

/** The rope settings: `rope_scaling` (transformers 4.x) or `rope_parameters` (5.x). */
function ropeParameters(c: HfConfig): Record<string, unknown> | undefined {
  const rp = c.raw.rope_parameters ?? c.ropeScaling;
  return typeof rp === "object" && rp !== null ? (rp as Record<string, unknown>) : undefined;
}

/** Rotated dimensions per head: Phi-4-mini rotates only `partial_rotary_factor` of each head. */
function ropeDims(c: HfConfig, d: DecoderDims, configPath: string): number {
  const partial = c.raw.partial_rotary_factor ?? ropeParameters(c)?.partial_rotary_factor ?? 1;
  if (typeof partial !== "number" || !(partial > 0 && partial <= 1)) throw new ConvertError(configPath, `config.json's "partial_rotary_factor" must be in (0, 1], got ${JSON.stringify(partial)}`);
  const dims = Math.floor(d.headDim * partial);
  if (dims % 2 !== 0) throw new ConvertError(configPath, `partial_rotary_factor ${partial} of head_dim ${d.headDim} rotates an odd ${dims} dimensions`);
  return dims;
}

/**
 * rope_scaling "longrope" (also its old name "su"), read as HF does: the frequencies are divided
 * by short_factor or long_factor, and cos/sin are scaled by attention_factor, by default
 * √(1 + ln s / ln original) with s = max_position_embeddings / original_max_position_embeddings.
 */
function longRope(c: HfConfig, d: DecoderDims, configPath: string): LongRope | undefined {
  const rs = ropeParameters(c);
  if (!rs) return undefined;
  const type = String(rs.rope_type ?? rs.type ?? "default");
  if (type === "default") return undefined;
  if (type !== "longrope" && type !== "su") throw new ConvertError(configPath, `Phi-3 rope_scaling "${type}" is not supported (supported: longrope)`);
  const original = rs.original_max_position_embeddings ?? c.raw.original_max_position_embeddings;
  if (typeof original !== "number" || !Number.isInteger(original) || original <= 1) {
    throw new ConvertError(configPath, `longrope needs a positive integer "original_max_position_embeddings", got ${JSON.stringify(original)}`);
  }
  const half = ropeDims(c, d, configPath) / 2;
  const factors = (key: "short_factor" | "long_factor"): Float32Array => {
    const v = rs[key];
    if (!Array.isArray(v) || v.length !== half || !v.every((x) => typeof x === "number" && Number.isFinite(x) && x > 0)) {
      throw new ConvertError(configPath, `longrope "${key}" must list ${half} positive numbers (half the rotated dimensions)`);
    }
    return Float32Array.from(v as number[]);
  };
  const scale = d.context / original;
  const explicit = rs.attention_factor;
  if (explicit !== undefined && explicit !== null && (typeof explicit !== "number" || !(explicit > 0))) {
    throw new ConvertError(configPath, `longrope "attention_factor" must be a positive number, got ${JSON.stringify(explicit)}`);
  }
  const attnFactor = typeof explicit === "number" ? explicit : scale > 1 ? Math.sqrt(1 + Math.log(scale) / Math.log(original)) : 1;
  return { original, short: factors("short_factor"), long: factors("long_factor"), attnFactor };
}

const factorTensor = (name: string, values: Float32Array): TensorPlan => ({ name, shape: [values.length], sources: [], values: () => values, keepF32: true });

/**
 * llama.cpp picks rope_factors_long when a context's per-sequence size exceeds
 * rope.scaling.original_context_length, else rope_factors_short (HF switches on the sequence
 * length instead), and multiplies cos/sin by rope.scaling.attn_factor either way.
 */
export const phi3Converter: ArchitectureConverter = {
  hfArchitectures: ["Phi3ForCausalLM"],
  ggufArchitecture: "phi3",
  metadata(c, configPath) {
    const d = decoderDims(c, configPath);
    const rope = longRope(c, d, configPath);
    const m = decoderMetadata("phi3", c, d, ropeDims(c, d, configPath));
    const original = rope?.original ?? c.raw.original_max_position_embeddings;
    m.set("phi3.rope.scaling.original_context_length", u32(typeof original === "number" ? original : d.context));
    if (rope) m.set("phi3.rope.scaling.attn_factor", f32(rope.attnFactor));
    if (typeof c.raw.sliding_window === "number") m.set("phi3.attention.sliding_window", u32(c.raw.sliding_window));
    return m;
  },
  plan(c, tensors, configPath) {
    const d = decoderDims(c, configPath);
    const rope = longRope(c, d, configPath);
    const extra = rope ? [factorTensor("rope_factors_long.weight", rope.long), factorTensor("rope_factors_short.weight", rope.short)] : [];
    return planDecoder(c, d, tensors, configPath, layer, extra);
  },
};
