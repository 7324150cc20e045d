import { readFileSync } from "node:fs";
import { join } from "node:path";
import { matVec, readF64Weights, rmsNorm, softmax, tensorNamed } from "./llama-reference.js";

/** The config.json keys the Phi-3 forward pass reads. */
export interface Phi3Config {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  rms_norm_eps: number;
  rope_theta: number;
  max_position_embeddings: number;
  original_max_position_embeddings?: number;
  partial_rotary_factor?: number;
  rope_scaling?: { type: string; short_factor: number[]; long_factor: number[] } | null;
}

/** Which LongRoPE factors divide the frequencies; "none" leaves them undivided. */
export type FactorChoice = "short" | "long" | "none";

/**
 * An independent float64 forward pass of an HF `Phi3ForCausalLM` folder (F32 weights, untied
 * lm_head), written from the HF modeling code: fused qkv_proj split [q; k; v], rotate_half RoPE on
 * the first partial_rotary_factor of each head with LongRoPE (inverse frequencies divided by the
 * chosen factors, cos and sin multiplied by √(1 + ln s / ln original), s = max / original
 * positions), fused gate_up_proj split [gate; up] with SiLU. HF picks the long factors once the
 * sequence outgrows original_max_position_embeddings; llama.cpp picks them by context size, so the
 * caller names the set. `attentionScaling: false` drops the cos/sin scale (to show it matters).
 */
export class Phi3Reference {
  private readonly weights: Map<string, Float64Array>;
  readonly config: Phi3Config;

  constructor(folder: string, private readonly factors: FactorChoice, private readonly attentionScaling = true) {
    this.config = JSON.parse(readFileSync(join(folder, "config.json"), "utf8"));
    this.weights = readF64Weights(folder);
  }

  private w(name: string): Float64Array {
    return tensorNamed(this.weights, name);
  }

  private rmsNorm(x: Float64Array, weight: string): Float64Array {
    return rmsNorm(x, this.w(weight), this.config.rms_norm_eps);
  }

  private get headDim(): number {
    return this.config.hidden_size / this.config.num_attention_heads;
  }

  /** cos/sin scale of LongRoPE. */
  private get mscale(): number {
    const c = this.config;
    const original = c.original_max_position_embeddings;
    if (!c.rope_scaling || !original || !this.attentionScaling) return 1;
    const s = c.max_position_embeddings / original;
    return s > 1 ? Math.sqrt(1 + Math.log(s) / Math.log(original)) : 1;
  }

  private rope(x: Float64Array, heads: number, position: number): void {
    const c = this.config;
    const hd = this.headDim;
    const rot = Math.floor(hd * (c.partial_rotary_factor ?? 1));
    const half = rot / 2;
    const ext = this.factors === "none" || !c.rope_scaling ? undefined : this.factors === "long" ? c.rope_scaling.long_factor : c.rope_scaling.short_factor;
    const m = this.mscale;
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < half; i++) {
        const invFreq = 1 / ((ext?.[i] ?? 1) * Math.pow(c.rope_theta, (2 * i) / rot));
        const cos = Math.cos(position * invFreq) * m;
        const sin = Math.sin(position * invFreq) * m;
        const a = x[h * hd + i]!;
        const b = x[h * hd + i + half]!;
        x[h * hd + i] = a * cos - b * sin;
        x[h * hd + i + half] = b * cos + a * sin;
      }
    }
  }

  nextTokenLogits(tokens: readonly number[]): Float64Array {
    const { hidden_size: d, intermediate_size: ff, num_hidden_layers: layers, num_attention_heads: heads, num_key_value_heads: kvHeads } = this.config;
    const hd = this.headDim;
    const embed = this.w("model.embed_tokens.weight");
    let h = tokens.map((t) => embed.slice(t * d, (t + 1) * d));
    for (let l = 0; l < layers; l++) {
      const p = `model.layers.${l}`;
      const qkv = h.map((x) => matVec(this.w(`${p}.self_attn.qkv_proj.weight`), this.rmsNorm(x, `${p}.input_layernorm.weight`), (heads + 2 * kvHeads) * hd));
      const q = qkv.map((t, pos) => {
        const v = t.slice(0, heads * hd);
        this.rope(v, heads, pos);
        return v;
      });
      const k = qkv.map((t, pos) => {
        const v = t.slice(heads * hd, (heads + kvHeads) * hd);
        this.rope(v, kvHeads, pos);
        return v;
      });
      const v = qkv.map((t) => t.slice((heads + kvHeads) * hd));
      h = h.map((resid, pos) => {
        const attn = new Float64Array(heads * hd);
        for (let hh = 0; hh < heads; hh++) {
          const kv = Math.floor(hh / (heads / kvHeads));
          const scores = Array.from({ length: pos + 1 }, (_, j) => {
            let s = 0;
            for (let i = 0; i < hd; i++) s += q[pos]![hh * hd + i]! * k[j]![kv * hd + i]!;
            return s / Math.sqrt(hd);
          });
          const probs = softmax(scores);
          for (let j = 0; j <= pos; j++) for (let i = 0; i < hd; i++) attn[hh * hd + i]! += probs[j]! * v[j]![kv * hd + i]!;
        }
        const o = matVec(this.w(`${p}.self_attn.o_proj.weight`), attn, d);
        const mid = resid.map((r, i) => r + o[i]!);
        const gateUp = matVec(this.w(`${p}.mlp.gate_up_proj.weight`), this.rmsNorm(mid, `${p}.post_attention_layernorm.weight`), 2 * ff);
        const act = new Float64Array(ff).map((_, i) => (gateUp[i]! / (1 + Math.exp(-gateUp[i]!))) * gateUp[ff + i]!);
        const down = matVec(this.w(`${p}.mlp.down_proj.weight`), act, d);
        return mid.map((m, i) => m + down[i]!);
      });
    }
    return matVec(this.w("lm_head.weight"), this.rmsNorm(h.at(-1)!, "model.norm.weight"), embed.length / d);
  }

  nextTokenProbabilities(tokens: readonly number[]): Float64Array {
    return softmax(this.nextTokenLogits(tokens));
  }
}
