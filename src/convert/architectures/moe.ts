import type { HfConfig } from "../../formats/hf-folder.js";
import type { GgufWriteValue } from "../../formats/gguf-writer.js";
import { ConvertError } from "../errors.js";
import { type DecoderDims, type LayerTensorSpec, u32 } from "./decoder.js";

/** The mixture-of-experts sizes of a config, validated. */
export interface MoeDims {
  experts: number;
  used: number;
  /** Rows of each expert's gate/up projection. */
  expertFfn: number;
}

/** The config.json keys a family names its MoE sizes with. */
export interface MoeKeys {
  experts: string;
  used: string;
  /** Absent: the experts are intermediate_size wide (Mixtral). */
  expertFfn?: string;
}

export function positiveInteger(c: HfConfig, key: string, configPath: string): number {
  const v = c.raw[key];
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) throw new ConvertError(configPath, `config.json lacks a positive integer "${key}"`);
  return v;
}

export function moeDims(c: HfConfig, keys: MoeKeys, configPath: string): MoeDims {
  const experts = positiveInteger(c, keys.experts, configPath);
  const used = positiveInteger(c, keys.used, configPath);
  if (used > experts) throw new ConvertError(configPath, `"${keys.used}" ${used} exceeds "${keys.experts}" ${experts}`);
  const expertFfn = keys.expertFfn ? positiveInteger(c, keys.expertFfn, configPath) : positiveInteger(c, "intermediate_size", configPath);
  const act = c.raw.hidden_act ?? "silu";
  // llama.cpp's MoE graphs for these families gate the experts with SiLU only.
  if (act !== "silu") throw new ConvertError(configPath, `hidden_act "${String(act)}" is not supported for ${c.architectures[0]} (llama.cpp's experts use silu)`);
  return { experts, used, expertFfn };
}

/** `<arch>.expert_*` keys; the expert width only where llama.cpp reads it separately from feed_forward_length. */
export function moeMetadata(arch: string, m: MoeDims, withExpertFfn: boolean): [string, GgufWriteValue][] {
  const out: [string, GgufWriteValue][] = [
    [`${arch}.expert_count`, u32(m.experts)],
    [`${arch}.expert_used_count`, u32(m.used)],
  ];
  if (withExpertFfn) out.push([`${arch}.expert_feed_forward_length`, u32(m.expertFfn)]);
  return out;
}

/** HF names (under `model.layers.N.`, with `{e}` for the expert) of the router and each expert's SwiGLU projections. */
export interface ExpertNames {
  router: string;
  gate: string;
  up: string;
  down: string;
}

/** The router → ffn_gate_inp and the experts stacked into ffn_{gate,up,down}_exps. */
export function expertLayer(names: ExpertNames, m: MoeDims): LayerTensorSpec[] {
  return [
    { hf: names.router, gguf: "ffn_gate_inp.weight", shape: (d: DecoderDims) => [m.experts, d.hidden] },
    { hf: names.gate, gguf: "ffn_gate_exps.weight", shape: (d: DecoderDims) => [m.expertFfn, d.hidden], experts: m.experts },
    { hf: names.up, gguf: "ffn_up_exps.weight", shape: (d: DecoderDims) => [m.expertFfn, d.hidden], experts: m.experts },
    { hf: names.down, gguf: "ffn_down_exps.weight", shape: (d: DecoderDims) => [d.hidden, m.expertFfn], experts: m.experts },
  ];
}

/** Qwen MoE configs can mix dense layers in, and slide attention; llama.cpp's qwen2moe / qwen3moe graphs do neither. */
export function refuseQwenMoeVariants(c: HfConfig, configPath: string): void {
  const name = c.architectures[0];
  const step = c.raw.decoder_sparse_step ?? 1;
  const denseLayers = c.raw.mlp_only_layers ?? [];
  if (step !== 1 || !Array.isArray(denseLayers) || denseLayers.length > 0) {
    throw new ConvertError(configPath, `${name} with dense layers (decoder_sparse_step ${JSON.stringify(step)}, mlp_only_layers ${JSON.stringify(denseLayers)}) is not supported: llama.cpp expects experts in every layer`);
  }
  if (c.raw.use_sliding_window === true) throw new ConvertError(configPath, `${name} with use_sliding_window is not supported by llama.cpp's graph`);
}

/** llama.cpp hard-codes whether the chosen experts' weights are renormalised; the config must agree. */
export function requireTopKNorm(c: HfConfig, normalised: boolean, fallback: boolean, configPath: string): void {
  const v = c.raw.norm_topk_prob ?? fallback;
  if (v !== normalised) {
    throw new ConvertError(configPath, `${c.architectures[0]} with norm_topk_prob ${JSON.stringify(v)} is not supported (llama.cpp's graph ${normalised ? "always" : "never"} renormalises the top-k expert weights)`);
  }
}
