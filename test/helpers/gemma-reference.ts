import { readFileSync } from "node:fs";
import { join } from "node:path";
import { matVec, readF64Weights, rmsNorm, softmax, tensorNamed } from "./llama-reference.js";

/** The config.json keys the Gemma 2 / Gemma 3 (text) forward pass reads. */
export interface GemmaConfig {
  architectures: string[];
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  rms_norm_eps: number;
  rope_theta: number;
  /** Gemma 3: RoPE base of the sliding-window layers. */
  rope_local_base_freq?: number;
  /** Gemma 3: linear scaling of the global layers' RoPE (Gemma 2: of all layers). */
  rope_scaling?: { rope_type: string; factor: number } | null;
  query_pre_attn_scalar: number;
  sliding_window: number;
  /** Gemma 3: every n-th layer is global, the others slide. */
  sliding_window_pattern?: number;
  layer_types?: string[];
  attn_logit_softcapping?: number | null;
  final_logit_softcapping?: number | null;
}

const geluTanh = (x: number): number => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
const softcap = (x: number, cap: number | null | undefined): number => (cap ? Math.tanh(x / cap) * cap : x);

/**
 * An independent float64 forward pass of an HF `Gemma2ForCausalLM` / `Gemma3ForCausalLM` folder
 * (F32 weights, tied embeddings), written from the HF modeling code's semantics: embeddings
 * scaled by √hidden; RMSNorm multiplying by (1 + w); sandwich norms around attention and the MLP;
 * q/k RMSNorm per head (Gemma 3); rotate_half RoPE with the local base on sliding layers (Gemma 3);
 * scores scaled by query_pre_attn_scalar^-½, soft-capped (Gemma 2), causally masked and, on
 * sliding layers, limited to the last `sliding_window` positions; GELU-tanh gated MLP; final
 * logit soft-capping. `overrides` replace config keys (to show which features change the answer).
 */
export class GemmaReference {
  private readonly weights: Map<string, Float64Array>;
  readonly config: GemmaConfig;
  private readonly gemma3: boolean;

  constructor(folder: string, overrides: Partial<GemmaConfig> = {}) {
    this.config = { ...JSON.parse(readFileSync(join(folder, "config.json"), "utf8")), ...overrides };
    this.gemma3 = this.config.architectures[0] === "Gemma3ForCausalLM";
    this.weights = readF64Weights(folder);
  }

  private w(name: string): Float64Array {
    return tensorNamed(this.weights, name);
  }

  private rmsNorm(x: Float64Array, weight: Float64Array): Float64Array {
    return rmsNorm(x, weight, this.config.rms_norm_eps, 1);
  }

  /** Per-head RMSNorm of `x` (heads × headDim) with one weight of headDim. */
  private headNorm(x: Float64Array, heads: number, weight: Float64Array): Float64Array {
    const hd = this.config.head_dim;
    const out = new Float64Array(x.length);
    for (let h = 0; h < heads; h++) out.set(this.rmsNorm(x.subarray(h * hd, (h + 1) * hd), weight), h * hd);
    return out;
  }

  isSliding(layer: number): boolean {
    const c = this.config;
    if (c.layer_types) return c.layer_types[layer] === "sliding_attention";
    return this.gemma3 ? (layer + 1) % (c.sliding_window_pattern ?? 6) !== 0 : layer % 2 === 0;
  }

  /** rotate_half RoPE on each head at `position`. */
  private rope(x: Float64Array, heads: number, position: number, sliding: boolean): void {
    const c = this.config;
    const hd = c.head_dim;
    const half = hd / 2;
    const base = this.gemma3 && sliding ? (c.rope_local_base_freq ?? 10000) : c.rope_theta;
    const linear = c.rope_scaling?.rope_type === "linear" && !(this.gemma3 && sliding) ? c.rope_scaling.factor : 1;
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < half; i++) {
        const angle = (position / linear) * Math.pow(base, (-2 * i) / hd);
        const a = x[h * hd + i]!;
        const b = x[h * hd + i + half]!;
        x[h * hd + i] = a * Math.cos(angle) - b * Math.sin(angle);
        x[h * hd + i + half] = b * Math.cos(angle) + a * Math.sin(angle);
      }
    }
  }

  private attention(l: number, xs: Float64Array[]): Float64Array[] {
    const c = this.config;
    const { num_attention_heads: heads, num_key_value_heads: kvHeads, head_dim: hd } = c;
    const p = `model.layers.${l}.self_attn`;
    const sliding = this.isSliding(l);
    const project = (x: Float64Array, pos: number, which: "q" | "k", n: number): Float64Array => {
      let v = matVec(this.w(`${p}.${which}_proj.weight`), x, n * hd);
      if (this.gemma3) v = this.headNorm(v, n, this.w(`${p}.${which}_norm.weight`));
      this.rope(v, n, pos, sliding);
      return v;
    };
    const q = xs.map((x, pos) => project(x, pos, "q", heads));
    const k = xs.map((x, pos) => project(x, pos, "k", kvHeads));
    const v = xs.map((x) => matVec(this.w(`${p}.v_proj.weight`), x, kvHeads * hd));
    const scaling = c.query_pre_attn_scalar ** -0.5;
    return xs.map((_, pos) => {
      const out = new Float64Array(heads * hd);
      const first = sliding ? Math.max(0, pos - c.sliding_window + 1) : 0;
      for (let h = 0; h < heads; h++) {
        const kv = Math.floor(h / (heads / kvHeads));
        const scores: number[] = [];
        for (let j = first; j <= pos; j++) {
          let s = 0;
          for (let i = 0; i < hd; i++) s += q[pos]![h * hd + i]! * k[j]![kv * hd + i]!;
          scores.push(softcap(s * scaling, c.attn_logit_softcapping));
        }
        const probs = softmax(scores);
        for (let j = first; j <= pos; j++) for (let i = 0; i < hd; i++) out[h * hd + i]! += probs[j - first]! * v[j]![kv * hd + i]!;
      }
      return matVec(this.w(`${p}.o_proj.weight`), out, c.hidden_size);
    });
  }

  private mlp(l: number, x: Float64Array): Float64Array {
    const { hidden_size: d, intermediate_size: ff } = this.config;
    const p = `model.layers.${l}.mlp`;
    const gate = matVec(this.w(`${p}.gate_proj.weight`), x, ff);
    const up = matVec(this.w(`${p}.up_proj.weight`), x, ff);
    return matVec(this.w(`${p}.down_proj.weight`), gate.map((g, i) => geluTanh(g) * up[i]!), d);
  }

  /** Logits (after final soft-capping) for the next token after `tokens`. */
  nextTokenLogits(tokens: readonly number[]): Float64Array {
    const d = this.config.hidden_size;
    const embed = this.w("model.embed_tokens.weight");
    let h = tokens.map((t) => embed.slice(t * d, (t + 1) * d).map((v) => v * Math.sqrt(d)));
    for (let l = 0; l < this.config.num_hidden_layers; l++) {
      const p = `model.layers.${l}`;
      const attn = this.attention(l, h.map((x) => this.rmsNorm(x, this.w(`${p}.input_layernorm.weight`))));
      h = h.map((x, pos) => {
        const postAttn = this.rmsNorm(attn[pos]!, this.w(`${p}.post_attention_layernorm.weight`));
        const mid = x.map((v, i) => v + postAttn[i]!);
        const ffn = this.rmsNorm(this.mlp(l, this.rmsNorm(mid, this.w(`${p}.pre_feedforward_layernorm.weight`))), this.w(`${p}.post_feedforward_layernorm.weight`));
        return mid.map((v, i) => v + ffn[i]!);
      });
    }
    const final = this.rmsNorm(h.at(-1)!, this.w("model.norm.weight"));
    return matVec(embed, final, embed.length / d).map((x) => softcap(x, this.config.final_logit_softcapping));
  }

  nextTokenProbabilities(tokens: readonly number[]): Float64Array {
    return softmax(this.nextTokenLogits(tokens));
  }

}
