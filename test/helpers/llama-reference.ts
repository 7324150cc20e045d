import { readFileSync } from "node:fs";
import { join } from "node:path";
import { readSafetensorsData, readSafetensorsModel } from "../../src/formats/safetensors.js";

/** Every tensor of an HF folder (or those `wanted`) as float64 (F32 only: the references compute in float64). */
export function readF64Weights(folder: string, wanted: (name: string) => boolean = () => true): Map<string, Float64Array> {
  const weights = new Map<string, Float64Array>();
  for (const [name, tensor] of readSafetensorsModel(folder).tensors) {
    if (!wanted(name)) continue;
    if (tensor.dtype !== "F32") throw new Error(`reference reads F32 only; ${name} is ${tensor.dtype}`);
    const bytes = readSafetensorsData(tensor);
    weights.set(name, Float64Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4)));
  }
  return weights;
}

/** The tensor named `name`; a reference asking for one the folder lacks is a bug in the test. */
export function tensorNamed(weights: ReadonlyMap<string, Float64Array>, name: string): Float64Array {
  const t = weights.get(name);
  if (!t) throw new Error(`missing tensor ${name}`);
  return t;
}

/** RMSNorm: x / rms(x) × (offset + g) — offset 1 for Gemma's norms, stored as w for x·(1 + w). */
export function rmsNorm(x: Float64Array, g: Float64Array, eps: number, offset = 0): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const scale = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * scale * (offset + g[i]!));
}

/** y = W x for W stored [out, in] row-major. */
export function matVec(w: Float64Array, x: Float64Array, out: number): Float64Array {
  const n = x.length;
  const y = new Float64Array(out);
  for (let r = 0; r < out; r++) {
    let s = 0;
    for (let c = 0; c < n; c++) s += w[r * n + c]! * x[c]!;
    y[r] = s;
  }
  return y;
}

/** Softmax of scores, as a new array. */
export function softmax(scores: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < scores.length; i++) max = Math.max(max, scores[i]!);
  const e = Float64Array.from(scores, (x) => Math.exp(x - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / sum);
}

/**
 * An independent float64 forward pass of an HF `LlamaForCausalLM` folder (F32 weights, tied
 * embeddings): RMSNorm, rotate_half RoPE, grouped-query causal attention, SwiGLU. Written from the
 * HF modeling code's semantics, not from llama.cpp, so it checks the engine from outside.
 */
export class LlamaReference {
  private readonly weights: Map<string, Float64Array>;
  private readonly config: { hidden_size: number; intermediate_size: number; num_hidden_layers: number; num_attention_heads: number; num_key_value_heads: number; head_dim?: number; rms_norm_eps: number; rope_theta: number };

  constructor(folder: string) {
    this.config = JSON.parse(readFileSync(join(folder, "config.json"), "utf8"));
    this.weights = readF64Weights(folder);
  }

  private w(name: string): Float64Array {
    return tensorNamed(this.weights, name);
  }

  private rmsNorm(x: Float64Array, weight: string): Float64Array {
    return rmsNorm(x, this.w(weight), this.config.rms_norm_eps);
  }

  /** rotate_half RoPE on each head of `x` (heads × headDim) at `position`. */
  private rope(x: Float64Array, heads: number, headDim: number, position: number): void {
    const half = headDim / 2;
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < half; i++) {
        const angle = position * Math.pow(this.config.rope_theta, (-2 * i) / headDim);
        const a = x[h * headDim + i]!;
        const b = x[h * headDim + i + half]!;
        x[h * headDim + i] = a * Math.cos(angle) - b * Math.sin(angle);
        x[h * headDim + i + half] = b * Math.cos(angle) + a * Math.sin(angle);
      }
    }
  }

  /** The final hidden states (after the final norm), one per token. */
  hiddenStates(tokens: readonly number[]): Float64Array[] {
    const { hidden_size: d, intermediate_size: ff, num_hidden_layers: layers, num_attention_heads: heads, num_key_value_heads: kvHeads } = this.config;
    const headDim = this.config.head_dim ?? d / heads;
    const embed = this.w("model.embed_tokens.weight");
    let h = tokens.map((t) => embed.slice(t * d, (t + 1) * d));
    for (let l = 0; l < layers; l++) {
      const p = `model.layers.${l}`;
      const xs = h.map((x) => this.rmsNorm(x, `${p}.input_layernorm.weight`));
      const q = xs.map((x, pos) => {
        const v = matVec(this.w(`${p}.self_attn.q_proj.weight`), x, heads * headDim);
        this.rope(v, heads, headDim, pos);
        return v;
      });
      const k = xs.map((x, pos) => {
        const v = matVec(this.w(`${p}.self_attn.k_proj.weight`), x, kvHeads * headDim);
        this.rope(v, kvHeads, headDim, pos);
        return v;
      });
      const v = xs.map((x) => matVec(this.w(`${p}.self_attn.v_proj.weight`), x, kvHeads * headDim));
      h = h.map((resid, pos) => {
        const attn = new Float64Array(heads * headDim);
        for (let hd = 0; hd < heads; hd++) {
          const kv = Math.floor(hd / (heads / kvHeads));
          const scores = Array.from({ length: pos + 1 }, (_, j) => {
            let s = 0;
            for (let i = 0; i < headDim; i++) s += q[pos]![hd * headDim + i]! * k[j]![kv * headDim + i]!;
            return s / Math.sqrt(headDim);
          });
          const probs = softmax(scores);
          for (let j = 0; j <= pos; j++) for (let i = 0; i < headDim; i++) attn[hd * headDim + i]! += probs[j]! * v[j]![kv * headDim + i]!;
        }
        const o = matVec(this.w(`${p}.self_attn.o_proj.weight`), attn, d);
        const mid = resid.map((r, i) => r + o[i]!);
        const x = this.rmsNorm(mid, `${p}.post_attention_layernorm.weight`);
        const gate = matVec(this.w(`${p}.mlp.gate_proj.weight`), x, ff);
        const up = matVec(this.w(`${p}.mlp.up_proj.weight`), x, ff);
        const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]!);
        const down = matVec(this.w(`${p}.mlp.down_proj.weight`), act, d);
        return mid.map((m, i) => m + down[i]!);
      });
    }
    return h.map((x) => this.rmsNorm(x, "model.norm.weight"));
  }

  /** Next-token probabilities after `tokens` (tied embeddings as the output projection). */
  nextTokenProbabilities(tokens: readonly number[]): Float64Array {
    const states = this.hiddenStates(tokens);
    const embed = this.w("model.embed_tokens.weight");
    return softmax(matVec(embed, states.at(-1)!, embed.length / states[0]!.length));
  }

  /** Mean of the final hidden states over all tokens (llama.cpp's mean pooling of its embeddings output). */
  meanPooled(tokens: readonly number[]): Float64Array {
    const states = this.hiddenStates(tokens);
    const mean = new Float64Array(states[0]!.length);
    for (const s of states) for (let i = 0; i < s.length; i++) mean[i]! += s[i]! / states.length;
    return mean;
  }
}
