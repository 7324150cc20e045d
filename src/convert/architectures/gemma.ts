import type { HfConfig } from "../../formats/hf-folder.js";
import type { GgufWriteValue } from "../../formats/gguf-writer.js";
import { ConvertError } from "../errors.js";
import { type DecoderDims, decoderDims, decoderMetadata, f32, type LayerTensorSpec, planDecoder, str, u32 } from "./decoder.js";
import { ATTENTION_OUTPUT, qkvProjections, SWIGLU_MLP } from "./llama-layers.js";
import type { ArchitectureConverter, TensorPlan } from "./types.js";

/**
 * What Gemma 2 and Gemma 3 (text) share: sandwich norms around attention and the MLP, a gated
 * GELU-tanh MLP (the same three tensors as SwiGLU), RMSNorm weights stored as w for x·(1+w),
 * tied embeddings by default, and sliding-window layers in a fixed period.
 */

const NORMS: LayerTensorSpec[] = [
  { hf: "input_layernorm.weight", gguf: "attn_norm.weight", shape: (d) => [d.hidden] },
  { hf: "post_attention_layernorm.weight", gguf: "post_attention_norm.weight", shape: (d) => [d.hidden] },
  { hf: "pre_feedforward_layernorm.weight", gguf: "ffn_norm.weight", shape: (d) => [d.hidden] },
  { hf: "post_feedforward_layernorm.weight", gguf: "post_ffw_norm.weight", shape: (d) => [d.hidden] },
];

/** NeoX RoPE in llama.cpp's Gemma graphs, so q/k rows keep HF's order. */
export const GEMMA_LAYER: LayerTensorSpec[] = [...qkvProjections(false, "weight"), ATTENTION_OUTPUT, ...SWIGLU_MLP, ...NORMS];

export type Raw = Record<string, unknown>;

/** The family-specific parts of a Gemma converter. */
export interface GemmaFamily {
  ggufArchitecture: "gemma2" | "gemma3";
  hfArchitectures: readonly string[];
  layer: LayerTensorSpec[];
  /** llama.cpp's own attention scale is 1/√(hidden/heads) at this layer count (its "27B"), else 1/√head_dim. */
  layersScaledByHiddenPerHead: number;
  /** The GGUF tensor that carries the query scale correction (see `queryScaleCorrection`). */
  queryScaleTensor: string;
  /** Sliding-window period when config.json gives neither layer_types nor a pattern. */
  defaultSlidingPeriod: number;
  /** Family checks and `<arch>.*` keys beyond the decoder's and the sliding window's. */
  extraMetadata(raw: Raw, d: DecoderDims, configPath: string): Map<string, GgufWriteValue>;
}

function isNumber(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

/** A positive number under `key`, HF's default when the key is absent; null or junk is refused. */
export function positive(raw: Raw, key: string, fallback: number, configPath: string): number {
  const v = raw[key] ?? fallback;
  if (!isNumber(v) || v <= 0) throw new ConvertError(configPath, `config.json's "${key}" must be a positive number, got ${JSON.stringify(raw[key])}`);
  return v;
}

function checkActivation(raw: Raw, configPath: string): void {
  const act = raw.hidden_activation ?? raw.hidden_act ?? "gelu_pytorch_tanh";
  // llama.cpp's Gemma graphs use the tanh approximation of GELU.
  if (act !== "gelu_pytorch_tanh") throw new ConvertError(configPath, `hidden_activation "${String(act)}" is not supported for Gemma (llama.cpp uses gelu_pytorch_tanh)`);
}

/**
 * The llama.cpp sliding-window period p (layer i slides iff i mod p < p − 1) that reproduces the
 * config's layers: from `layer_types` when given, else `sliding_window_pattern`.
 */
export function slidingPeriod(raw: Raw, layers: number, fallback: number, configPath: string): number {
  const types = raw.layer_types;
  if (Array.isArray(types)) {
    if (types.length !== layers || !types.every((t) => t === "sliding_attention" || t === "full_attention")) {
      throw new ConvertError(configPath, `config.json's "layer_types" must list ${layers} entries of "sliding_attention" / "full_attention"`);
    }
    for (let p = 1; p <= layers + 1; p++) {
      if (types.every((t, i) => (t === "sliding_attention") === (i % p < p - 1))) return p;
    }
    throw new ConvertError(configPath, `config.json's "layer_types" is not a repeating pattern of sliding layers followed by one full-attention layer, which is all llama.cpp can express`);
  }
  const pattern = raw.sliding_window_pattern ?? raw._sliding_window_pattern ?? fallback;
  if (!Number.isInteger(pattern) || (pattern as number) < 1) throw new ConvertError(configPath, `config.json's "sliding_window_pattern" must be a positive integer, got ${JSON.stringify(pattern)}`);
  return pattern as number;
}

/**
 * HF scales attention scores by query_pre_attn_scalar^-½; llama.cpp ignores that key and derives
 * the scale from the model's shape. The ratio is folded into the query path (RoPE and RMSNorm
 * are linear in that scale), so any scalar converts exactly; for Google's checkpoints it is 1.
 */
export function queryScaleCorrection(raw: Raw, d: DecoderDims, family: GemmaFamily, configPath: string): number {
  const hf = positive(raw, "query_pre_attn_scalar", 256, configPath);
  const llama = d.layers === family.layersScaledByHiddenPerHead ? Math.floor(d.hidden / d.heads) : d.headDim;
  return Math.sqrt(llama / hf);
}

/** Gemma's config.json often omits tie_word_embeddings; HF's default for Gemma is tied. */
const withGemmaTying = (c: HfConfig): HfConfig => ({ ...c, tieWordEmbeddings: c.raw.tie_word_embeddings !== false });

export function gemmaConverter(family: GemmaFamily): ArchitectureConverter {
  const arch = family.ggufArchitecture;
  return {
    hfArchitectures: family.hfArchitectures,
    ggufArchitecture: arch,
    metadata(c, configPath) {
      checkActivation(c.raw, configPath);
      const d = decoderDims(c, configPath);
      const m = decoderMetadata(arch, c, d);
      // Written always: Gemma's head_dim rarely equals hidden/heads, and llama.cpp's converter does too.
      m.set(`${arch}.attention.key_length`, u32(d.headDim));
      m.set(`${arch}.attention.value_length`, u32(d.headDim));
      const period = slidingPeriod(c.raw, d.layers, family.defaultSlidingPeriod, configPath);
      const anySliding = Array.from({ length: d.layers }, (_, i) => i % period < period - 1).some(Boolean);
      if (anySliding) {
        m.set(`${arch}.attention.sliding_window`, u32(positive(c.raw, "sliding_window", 4096, configPath)));
        m.set(`${arch}.attention.sliding_window_pattern`, u32(period));
      } else if (arch === "gemma2") {
        // llama.cpp's gemma2 graph always builds a sliding-window cache, which needs sliding layers.
        throw new ConvertError(configPath, "a Gemma 2 model without sliding-window layers is not supported by llama.cpp's gemma2 graph");
      }
      for (const [k, v] of family.extraMetadata(c.raw, d, configPath)) m.set(k, v);
      return m;
    },
    plan(c, tensors, configPath) {
      const config = withGemmaTying(c);
      const d = decoderDims(config, configPath);
      const plans = planDecoder(config, d, tensors, configPath, family.layer);
      if (arch === "gemma2" && tensors.has("lm_head.weight") && !config.tieWordEmbeddings) {
        // llama.cpp's gemma2 graph always projects with token_embd.
        throw new ConvertError(configPath, "an untied lm_head is not supported for Gemma 2 (llama.cpp's gemma2 graph reuses the token embeddings)");
      }
      const scale = queryScaleCorrection(c.raw, d, family, configPath);
      return plans.map((plan) => gemmaValues(plan, plan.name.endsWith(family.queryScaleTensor) ? scale : 1));
    },
  };
}

/** Norm weights become 1 + w (llama.cpp multiplies by the stored weight); the query tensor is scaled. */
function gemmaValues(plan: TensorPlan, scale: number): TensorPlan {
  const shift = plan.name.endsWith("norm.weight") ? 1 : 0;
  if (shift === 0 && scale === 1) return plan;
  return { ...plan, affine: { shift, scale } };
}

/** One RoPE setting: base frequency and an optional linear scaling factor. */
export interface GemmaRope {
  theta: number;
  linearFactor?: number;
}

/**
 * Reads a rope dict (`rope_scaling` / `rope_parameters`, or one of its per-layer-type entries);
 * llama.cpp's Gemma graphs support the default and linear types only.
 */
export function readRope(params: unknown, theta: number, configPath: string, what: string): GemmaRope {
  const p = (typeof params === "object" && params !== null ? params : {}) as Raw;
  const type = String(p.rope_type ?? p.type ?? "default");
  const base = isNumber(p.rope_theta) ? p.rope_theta : theta;
  if (type === "default") return { theta: base };
  if (type === "linear" && isNumber(p.factor) && p.factor > 0) return { theta: base, linearFactor: p.factor };
  throw new ConvertError(configPath, `${what} rope type "${type}" is not supported for Gemma (supported: default, linear with a factor)`);
}

export function ropeMetadata(arch: string, rope: GemmaRope): [string, GgufWriteValue][] {
  const out: [string, GgufWriteValue][] = [[`${arch}.rope.freq_base`, f32(rope.theta)]];
  if (rope.linearFactor !== undefined) {
    out.push([`${arch}.rope.scaling.type`, str("linear")], [`${arch}.rope.scaling.factor`, f32(rope.linearFactor)]);
  }
  return out;
}
