import type { HfConfig } from "../../formats/hf-folder.js";
import { GgufValueType } from "../../formats/gguf.js";
import type { GgufWriteValue } from "../../formats/gguf-writer.js";
import type { SafetensorsTensor } from "../../formats/safetensors.js";
import { ConvertError } from "../errors.js";
import type { ArchitectureConverter, TensorPlan } from "./types.js";

/** Dimensions every decoder-only transformer config gives, validated. */
export interface DecoderDims {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  ffn: number;
  vocab: number;
  context: number;
}

export function decoderDims(c: HfConfig, configPath: string): DecoderDims {
  const need = (v: number | undefined, key: string): number => {
    if (v === undefined || !Number.isInteger(v) || v <= 0) throw new ConvertError(configPath, `config.json lacks a positive integer "${key}"`);
    return v;
  };
  const hidden = need(c.hiddenSize, "hidden_size");
  const heads = need(c.numHeads, "num_attention_heads");
  const kvHeads = c.numKvHeads === undefined ? heads : need(c.numKvHeads, "num_key_value_heads");
  if (heads % kvHeads !== 0) throw new ConvertError(configPath, `num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`);
  // Without head_dim, heads split hidden_size evenly; a fractional head size would still match
  // the projection shapes, and be written truncated into the GGUF.
  const headDim = c.headDim === undefined ? hidden / heads : need(c.headDim, "head_dim");
  if (!Number.isInteger(headDim)) throw new ConvertError(configPath, `hidden_size ${hidden} is not divisible by num_attention_heads ${heads} (and no head_dim is given)`);
  return {
    hidden,
    layers: need(c.numLayers, "num_hidden_layers"),
    heads,
    kvHeads,
    headDim,
    ffn: need(c.intermediateSize, "intermediate_size"),
    vocab: need(c.vocabSize, "vocab_size"),
    context: need(c.maxPositionEmbeddings, "max_position_embeddings"),
  };
}

export const u32 = (value: number): GgufWriteValue => ({ type: GgufValueType.UINT32, value });
export const f32 = (value: number): GgufWriteValue => ({ type: GgufValueType.FLOAT32, value });
export const str = (value: string): GgufWriteValue => ({ type: GgufValueType.STRING, value });

/** The `<arch>.*` keys llama.cpp reads for every llama-like decoder. */
export function decoderMetadata(arch: string, c: HfConfig, d: DecoderDims, ropeDims = d.headDim): Map<string, GgufWriteValue> {
  const m = new Map<string, GgufWriteValue>([
    [`${arch}.context_length`, u32(d.context)],
    [`${arch}.embedding_length`, u32(d.hidden)],
    [`${arch}.block_count`, u32(d.layers)],
    [`${arch}.feed_forward_length`, u32(d.ffn)],
    [`${arch}.attention.head_count`, u32(d.heads)],
    [`${arch}.attention.head_count_kv`, u32(d.kvHeads)],
    [`${arch}.rope.dimension_count`, u32(ropeDims)],
    [`${arch}.rope.freq_base`, f32(c.ropeTheta ?? 10000)],
    [`${arch}.attention.layer_norm_rms_epsilon`, f32(c.rmsNormEps ?? 1e-6)],
    [`${arch}.vocab_size`, u32(d.vocab)],
  ]);
  if (d.headDim !== d.hidden / d.heads) {
    m.set(`${arch}.attention.key_length`, u32(d.headDim));
    m.set(`${arch}.attention.value_length`, u32(d.headDim));
  }
  return m;
}

/** Tensors that carry no weights and are dropped on purpose. */
const IGNORED = [/\.rotary_emb\.inv_freq$/];

export interface LayerTensorSpec {
  /** HF name under `model.layers.N.`. */
  hf: string;
  /** GGUF name under `blk.N.`. */
  gguf: string;
  shape: (d: DecoderDims) => number[];
  optional?: boolean;
  /** Row permutation HF rotate-half → llama.cpp interleaved, with this many heads. */
  permuteHeads?: (d: DecoderDims) => number;
  /**
   * Mixture of experts: `hf` holds `{e}`, each of this many experts is one source of `shape`,
   * and they are stacked into one GGUF tensor of [experts, ...shape].
   */
  experts?: number;
}

const same = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * Plans a llama-like decoder: embeddings, per-layer tensors from `layer`, final norm, and the
 * output head (omitted when tied). Every checkpoint tensor must be used or explicitly ignored.
 */
export function planDecoder(
  c: HfConfig,
  d: DecoderDims,
  tensors: ReadonlyMap<string, SafetensorsTensor>,
  configPath: string,
  layer: LayerTensorSpec[],
  extra: TensorPlan[] = [],
): TensorPlan[] {
  const used = new Set<string>();
  const take = (hf: string, shape: number[], optional = false): SafetensorsTensor | undefined => {
    const t = tensors.get(hf);
    if (!t) {
      if (optional) return undefined;
      throw new ConvertError(configPath, `tensor "${hf}" is missing from the checkpoint`);
    }
    if (!same(t.shape, shape)) throw new ConvertError(t.file, `tensor "${hf}" has shape ${JSON.stringify(t.shape)}, config.json implies ${JSON.stringify(shape)}`);
    used.add(hf);
    return t;
  };
  const direct = (name: string, t: SafetensorsTensor): TensorPlan => ({ name, shape: t.shape, sources: [t], keepF32: t.shape.length === 1 });

  const plans: TensorPlan[] = [direct("token_embd.weight", take("model.embed_tokens.weight", [d.vocab, d.hidden])!)];
  for (let i = 0; i < d.layers; i++) {
    for (const spec of layer) {
      const shape = spec.shape(d);
      if (spec.experts !== undefined) {
        const parts = Array.from({ length: spec.experts }, (_, e) => take(`model.layers.${i}.${spec.hf.replace("{e}", String(e))}`, shape)!);
        plans.push({ name: `blk.${i}.${spec.gguf}`, shape: [spec.experts, ...shape], sources: parts, keepF32: false });
        continue;
      }
      const t = take(`model.layers.${i}.${spec.hf}`, shape, spec.optional);
      if (!t) continue;
      const plan = direct(`blk.${i}.${spec.gguf}`, t);
      if (spec.permuteHeads) {
        plan.permuteHeads = spec.permuteHeads(d);
      }
      plans.push(plan);
    }
  }
  plans.push(direct("output_norm.weight", take("model.norm.weight", [d.hidden])!));
  const head = tensors.get("lm_head.weight");
  if (!c.tieWordEmbeddings || head) {
    const t = take("lm_head.weight", [d.vocab, d.hidden], c.tieWordEmbeddings);
    // A tied checkpoint that still stores lm_head duplicates token_embd; llama.cpp reuses token_embd.
    if (t && !c.tieWordEmbeddings) plans.push(direct("output.weight", t));
  }
  plans.push(...extra);
  for (const name of tensors.keys()) {
    if (!used.has(name) && !IGNORED.some((re) => re.test(name))) {
      throw new ConvertError(tensors.get(name)!.file, `unexpected tensor "${name}": the ${c.architectures[0]} converter does not know where it belongs`);
    }
  }
  return plans;
}

/** Llama 3.x rope scaling → per-dimension frequency factors (llama.cpp's rope_freqs tensor). */
export function llama3RopeFactors(c: HfConfig, headDim: number): Float32Array {
  const rs = c.ropeScaling ?? {};
  const base = c.ropeTheta ?? 10000;
  const factor = Number(rs.factor ?? 8);
  const low = Number(rs.low_freq_factor ?? 1);
  const high = Number(rs.high_freq_factor ?? 4);
  const oldContext = Number(rs.original_max_position_embeddings ?? 8192);
  const lowWavelen = oldContext / low;
  const highWavelen = oldContext / high;
  const out = new Float32Array(headDim / 2);
  for (let i = 0; i < headDim / 2; i++) {
    const freq = 1 / base ** ((2 * i) / headDim);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = factor;
    else {
      const smooth = (oldContext / wavelen - low) / (high - low);
      out[i] = 1 / ((1 - smooth) / factor + smooth);
    }
  }
  return out;
}

/** rope_scaling → metadata (linear, yarn) or a rope_freqs tensor (llama3); others are refused. */
export function ropeScaling(arch: string, c: HfConfig, d: DecoderDims, configPath: string): { metadata: Map<string, GgufWriteValue>; tensors: TensorPlan[] } {
  const rs = c.ropeScaling;
  const metadata = new Map<string, GgufWriteValue>();
  if (!rs) return { metadata, tensors: [] };
  const type = String(rs.rope_type ?? rs.type ?? "");
  switch (type) {
    case "default":
      return { metadata, tensors: [] };
    case "linear":
      metadata.set(`${arch}.rope.scaling.type`, str("linear"));
      metadata.set(`${arch}.rope.scaling.factor`, f32(Number(rs.factor)));
      return { metadata, tensors: [] };
    case "yarn":
      metadata.set(`${arch}.rope.scaling.type`, str("yarn"));
      metadata.set(`${arch}.rope.scaling.factor`, f32(Number(rs.factor)));
      metadata.set(`${arch}.rope.scaling.original_context_length`, u32(Number(rs.original_max_position_embeddings ?? d.context)));
      return { metadata, tensors: [] };
    case "llama3": {
      const factors = llama3RopeFactors(c, d.headDim);
      return { metadata, tensors: [{ name: "rope_freqs.weight", shape: [factors.length], sources: [], values: () => factors, keepF32: true }] };
    }
    default:
      throw new ConvertError(configPath, `rope_scaling type "${type}" is not supported by the converter (supported: linear, yarn, llama3)`);
  }
}

/**
 * A converter for a llama-like family: the shared metadata keys and rope scaling, the given
 * per-layer tensors (or a function of the config giving them, e.g. sized by the expert count),
 * and any family-specific metadata.
 */
export function llamaLikeConverter(
  ggufArchitecture: string,
  hfArchitectures: readonly string[],
  layer: LayerTensorSpec[] | ((c: HfConfig, configPath: string) => LayerTensorSpec[]),
  extraMetadata: (d: DecoderDims, c: HfConfig, configPath: string) => [string, GgufWriteValue][] = () => [],
): ArchitectureConverter {
  return {
    hfArchitectures,
    ggufArchitecture,
    metadata(c, configPath) {
      const d = decoderDims(c, configPath);
      const m = decoderMetadata(ggufArchitecture, c, d);
      for (const [k, v] of extraMetadata(d, c, configPath)) m.set(k, v);
      for (const [k, v] of ropeScaling(ggufArchitecture, c, d, configPath).metadata) m.set(k, v);
      return m;
    },
    plan(c, tensors, configPath) {
      const d = decoderDims(c, configPath);
      const layers = typeof layer === "function" ? layer(c, configPath) : layer;
      return planDecoder(c, d, tensors, configPath, layers, ropeScaling(ggufArchitecture, c, d, configPath).tensors);
    },
  };
}
