import { type HfConfig, hfConfigFromObject } from "../../formats/hf-folder.js";
import type { SafetensorsTensor } from "../../formats/safetensors.js";
import { ConvertError } from "../errors.js";
import { gemma3Converter } from "./gemma3.js";
import type { ArchitectureConverter } from "./types.js";

/**
 * transformers' Gemma3TextConfig defaults: the multimodal checkpoints' text_config gives only
 * what differs from them (gemma-3-4b-it: hidden and intermediate size, layers, sliding window,
 * rope scaling), so heads, head_dim, vocabulary and RoPE bases come from here.
 */
const GEMMA3_TEXT_DEFAULTS: Record<string, unknown> = {
  vocab_size: 262_208,
  hidden_size: 2304,
  intermediate_size: 9216,
  num_hidden_layers: 26,
  num_attention_heads: 8,
  num_key_value_heads: 4,
  head_dim: 256,
  hidden_activation: "gelu_pytorch_tanh",
  max_position_embeddings: 131_072,
  rms_norm_eps: 1e-6,
  rope_theta: 1_000_000,
  rope_local_base_freq: 10_000,
  query_pre_attn_scalar: 256,
  sliding_window: 4096,
  sliding_window_pattern: 6,
  final_logit_softcapping: null,
  attn_logit_softcapping: null,
  rope_scaling: null,
};

/**
 * The language model's tensors: transformers 4.50 saved `language_model.model.*` (and
 * `language_model.lm_head.*`), later versions `model.language_model.*` beside `lm_head.*`.
 */
const TEXT_PREFIXES: readonly [string, string][] = [
  ["language_model.model.", "model."],
  ["model.language_model.", "model."],
  ["language_model.lm_head.", "lm_head."],
];

/** The image side, left out: llama.cpp serves it from a separate mmproj file, which Shimmy does not build. */
const IMAGE_PARTS: readonly [string, readonly string[]][] = [
  ["vision tower", ["vision_tower.", "model.vision_tower."]],
  ["multimodal projector", ["multi_modal_projector.", "model.multi_modal_projector."]],
];

const imagePart = (name: string): string | undefined => IMAGE_PARTS.find(([, prefixes]) => prefixes.some((p) => name.startsWith(p)))?.[0];

function textTensors(tensors: ReadonlyMap<string, SafetensorsTensor>): Map<string, SafetensorsTensor> {
  const out = new Map<string, SafetensorsTensor>();
  for (const [name, tensor] of tensors) {
    if (imagePart(name)) continue;
    const prefix = TEXT_PREFIXES.find(([from]) => name.startsWith(from));
    out.set(prefix ? prefix[1] + name.slice(prefix[0].length) : name, tensor);
  }
  return out;
}

function textConfig(c: HfConfig, configPath: string): HfConfig {
  const text = c.raw.text_config ?? {};
  if (typeof text !== "object" || text === null || Array.isArray(text)) throw new ConvertError(configPath, `config.json's "text_config" must be an object`);
  const t = text as Record<string, unknown>;
  return hfConfigFromObject({
    ...GEMMA3_TEXT_DEFAULTS,
    ...t,
    architectures: c.architectures,
    tie_word_embeddings: t.tie_word_embeddings ?? c.raw.tie_word_embeddings ?? true,
    torch_dtype: t.torch_dtype ?? c.raw.torch_dtype,
  });
}

/** Gemma 3 multimodal checkpoints (4B, 12B, 27B): the Gemma 3 text model only. */
export const gemma3MultimodalConverter: ArchitectureConverter = {
  ...gemma3Converter,
  hfArchitectures: ["Gemma3ForConditionalGeneration"],
  textConfig,
  skipped(tensors) {
    const counts = new Map<string, number>();
    for (const name of tensors.keys()) {
      const part = imagePart(name);
      if (part) counts.set(part, (counts.get(part) ?? 0) + 1);
    }
    return [...counts].map(([part, n]) => `${part} (${n} tensors) not converted: text only`);
  },
  plan(c, tensors, configPath) {
    return gemma3Converter.plan(c, textTensors(tensors), configPath);
  },
};
