/**
 * GGUF architecture metadata → config.json and generation_config.json, and GGUF tensor names →
 * HF names, for the llama-like families the HF → GGUF converter writes.
 */
import { llama3RopeFactors } from "../architectures/decoder.js";
import type { HfConfig } from "../../formats/hf-folder.js";
import { type GgufFile, metaNumber, metaString } from "../../formats/gguf.js";
import { ConvertError } from "../errors.js";
import type { TokenizerFiles } from "./tokenizer-files.js";

interface ExportFamily {
  hfArchitecture: string;
  modelType: string;
  /** The family's attention projections carry biases (always present, not optional). */
  qkvBias: boolean;
}

/** GGUF `general.architecture` → the HF family an export writes. */
export const EXPORT_FAMILIES: Readonly<Record<string, ExportFamily>> = {
  llama: { hfArchitecture: "LlamaForCausalLM", modelType: "llama", qkvBias: false },
  qwen2: { hfArchitecture: "Qwen2ForCausalLM", modelType: "qwen2", qkvBias: true },
  qwen3: { hfArchitecture: "Qwen3ForCausalLM", modelType: "qwen3", qkvBias: false },
};

/** The shortest decimal that reads back as the same float32 (GGUF floats are f32; 1e-5 rather than 9.999999747378752e-6). */
export function shortestF32(x: number): number {
  for (let p = 1; p <= 9; p++) {
    const v = Number(x.toPrecision(p));
    if (Math.fround(v) === x) return v;
  }
  return x;
}

const LAYER_NAMES: Readonly<Record<string, string>> = {
  attn_q: "self_attn.q_proj",
  attn_k: "self_attn.k_proj",
  attn_v: "self_attn.v_proj",
  attn_output: "self_attn.o_proj",
  attn_q_norm: "self_attn.q_norm",
  attn_k_norm: "self_attn.k_norm",
  attn_norm: "input_layernorm",
  ffn_norm: "post_attention_layernorm",
  ffn_gate: "mlp.gate_proj",
  ffn_up: "mlp.up_proj",
  ffn_down: "mlp.down_proj",
};

const GLOBAL_NAMES: Readonly<Record<string, string>> = {
  "token_embd.weight": "model.embed_tokens.weight",
  "output_norm.weight": "model.norm.weight",
  "output.weight": "lm_head.weight",
};

/** Tensors computed from config.json on the way in (llama3 rope factors): not checkpoint tensors. */
export const COMPUTED_TENSORS: ReadonlySet<string> = new Set(["rope_freqs.weight"]);

/** A GGUF tensor name's HF name, or undefined when the llama-like layout has none. */
export function hfTensorName(gguf: string): string | undefined {
  if (GLOBAL_NAMES[gguf]) return GLOBAL_NAMES[gguf];
  const m = /^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$/.exec(gguf);
  const layer = m && LAYER_NAMES[m[2]!];
  return layer ? `model.layers.${m[1]}.${layer}.${m[3]}` : undefined;
}

/**
 * Llama 3.x rope factors back to rope_scaling, with Llama 3's low 1, high 4 and original context
 * 8192: the factor is the largest factor, or solved from the first smoothed one (small heads
 * never reach the fully scaled band). Kept only when it reproduces every factor exactly.
 */
function llama3RopeScaling(factors: Float32Array, headDim: number, theta: number, path: string): Record<string, unknown> {
  const scaling = (factor: number) => ({ rope_type: "llama3", factor: shortestF32(factor), low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 });
  const candidates = [Math.max(...factors)];
  const i = factors.findIndex((v) => v !== 1);
  if (i >= 0) {
    // In the smooth band 1/f_i = (1 - s)/factor + s, with s from the wavelength of dimension pair i.
    const wavelen = (2 * Math.PI) / (1 / theta ** ((2 * i) / headDim));
    const s = (8192 / wavelen - 1) / 3;
    const solved = (1 - s) / (1 / factors[i]! - s);
    candidates.push(solved, Math.round(solved));
  }
  for (const factor of candidates) {
    const again = llama3RopeFactors({ ropeScaling: scaling(factor), ropeTheta: theta } as unknown as HfConfig, headDim);
    if (again.length === factors.length && again.every((v, k) => v === factors[k])) return scaling(factor);
  }
  throw new ConvertError(path, "rope_freqs.weight holds rope factors that are not Llama 3's scaling with low 1, high 4 and original context 8192; exporting it is not supported");
}

export interface ConfigInputs {
  file: GgufFile;
  tokenizer: TokenizerFiles;
  /** output.weight is present (else the head is tied to token_embd). */
  untiedHead: boolean;
  /** blk.0.attn_q.bias is present. */
  attentionBias: boolean;
  /** rope_freqs.weight decoded, when present. */
  ropeFactors?: Float32Array;
  torchDtype: string;
}

/** config.json for the GGUF's family; sizes and rope settings from `<arch>.*`. */
export function hfConfig({ file: f, tokenizer, untiedHead, attentionBias, ropeFactors, torchDtype }: ConfigInputs): Record<string, unknown> {
  const arch = metaString(f, "general.architecture")!;
  const family = EXPORT_FAMILIES[arch]!;
  const n = (key: string): number | undefined => metaNumber(f, `${arch}.${key}`);
  const need = (key: string): number => {
    const v = n(key);
    if (v === undefined || !Number.isInteger(v) || v <= 0) throw new ConvertError(f.path, `${arch}.${key} is missing or not a positive integer`);
    return v;
  };
  if ((n("expert_count") ?? 0) > 0) throw new ConvertError(f.path, `${arch} with experts (expert_count ${n("expert_count")}) is not supported for export`);
  const hidden = need("embedding_length");
  const heads = need("attention.head_count");
  const headDim = n("attention.key_length") ?? hidden / heads;
  if (!Number.isInteger(headDim)) throw new ConvertError(f.path, `${arch}.embedding_length ${hidden} is not a multiple of the head count ${heads}`);
  if ((n("attention.value_length") ?? headDim) !== headDim) throw new ConvertError(f.path, `${arch}.attention.value_length differs from key_length; HF's ${family.hfArchitecture} has one head_dim`);
  const ropeDims = n("rope.dimension_count") ?? headDim;
  if (ropeDims !== headDim) throw new ConvertError(f.path, `${arch}.rope.dimension_count ${ropeDims} rotates part of each head (head_dim ${headDim}); ${family.hfArchitecture} rotates whole heads`);
  const theta = n("rope.freq_base") ?? 10000;

  let ropeScaling: Record<string, unknown> | null = null;
  const scalingType = metaString(f, `${arch}.rope.scaling.type`);
  if (ropeFactors) ropeScaling = llama3RopeScaling(ropeFactors, headDim, theta, f.path);
  else if (scalingType === "linear") ropeScaling = { rope_type: "linear", factor: shortestF32(n("rope.scaling.factor") ?? 1) };
  else if (scalingType === "yarn") ropeScaling = { rope_type: "yarn", factor: shortestF32(n("rope.scaling.factor") ?? 1), original_max_position_embeddings: n("rope.scaling.original_context_length") };
  else if (scalingType !== undefined && scalingType !== "none") throw new ConvertError(f.path, `${arch}.rope.scaling.type "${scalingType}" is not supported for export (linear, yarn, llama3 factors are)`);

  const name = metaString(f, "general.name");
  return {
    architectures: [family.hfArchitecture],
    model_type: family.modelType,
    ...(name ? { _name_or_path: name } : {}),
    vocab_size: n("vocab_size") ?? tokenizer.vocabSize,
    hidden_size: hidden,
    intermediate_size: need("feed_forward_length"),
    num_hidden_layers: need("block_count"),
    num_attention_heads: heads,
    num_key_value_heads: n("attention.head_count_kv") ?? heads,
    head_dim: headDim,
    hidden_act: "silu",
    max_position_embeddings: need("context_length"),
    rms_norm_eps: shortestF32(n("attention.layer_norm_rms_epsilon") ?? 1e-6),
    rope_theta: shortestF32(theta),
    rope_scaling: ropeScaling,
    ...(family.qkvBias ? {} : { attention_bias: attentionBias }),
    tie_word_embeddings: !untiedHead,
    bos_token_id: tokenizer.ids.bos ?? null,
    eos_token_id: tokenizer.ids.eos ?? null,
    ...(tokenizer.ids.pad !== undefined ? { pad_token_id: tokenizer.ids.pad } : {}),
    torch_dtype: torchDtype,
  };
}

/** general.sampling.* key → generation_config.json key (llama.cpp writes these from generation_config on the way in). */
const SAMPLING_KEYS: Readonly<Record<string, string>> = { temp: "temperature", top_k: "top_k", top_p: "top_p", min_p: "min_p", penalty_repeat: "repetition_penalty" };

export function generationConfig(f: GgufFile, tokenizer: TokenizerFiles): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (tokenizer.ids.bos !== undefined) out.bos_token_id = tokenizer.ids.bos;
  if (tokenizer.ids.eos !== undefined) out.eos_token_id = tokenizer.ids.eos;
  if (tokenizer.ids.pad !== undefined) out.pad_token_id = tokenizer.ids.pad;
  for (const [key, hf] of Object.entries(SAMPLING_KEYS)) {
    const v = metaNumber(f, `general.sampling.${key}`);
    if (v !== undefined) out[hf] = key === "top_k" ? v : shortestF32(v);
  }
  if (out.temperature !== undefined || out.top_k !== undefined || out.top_p !== undefined) out.do_sample = true;
  return out;
}
