import { readFileSync } from "node:fs";
import { join } from "node:path";
import { matVec, readF64Weights, softmax } from "./llama-reference.js";

export type BertPooling = "mean" | "cls" | "last";

/** Parts of the forward pass a test may switch off, to show each one changes the vector. */
export interface BertAblation {
  tokenTypes?: boolean;
  positions?: boolean;
}

/** erf by its Maclaurin series (|x| < 6; exact to ~1e-12 there), ±1 beyond. */
function erf(x: number): number {
  if (Math.abs(x) >= 6) return Math.sign(x);
  let term = x;
  let sum = x;
  for (let n = 1; n < 200 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

/** HF's "gelu": the exact, erf-based GELU. */
const gelu = (x: number): number => 0.5 * x * (1 + erf(x / Math.SQRT2));

/**
 * An independent float64 forward pass of an HF `BertModel` folder (F32 weights), written from
 * the HF modeling code's semantics: word + absolute position + token-type-0 embeddings, an
 * embedding LayerNorm, then per layer bidirectional multi-head attention with biases, residual +
 * LayerNorm, a GELU MLP, residual + LayerNorm (post-LN); then sentence-transformers pooling.
 */
export class BertReference {
  private readonly weights: Map<string, Float64Array>;
  private readonly config: { hidden_size: number; intermediate_size: number; num_hidden_layers: number; num_attention_heads: number; layer_norm_eps: number };

  constructor(folder: string, private readonly ablation: BertAblation = {}) {
    this.config = JSON.parse(readFileSync(join(folder, "config.json"), "utf8"));
    this.weights = readF64Weights(folder, (name) => name !== "embeddings.position_ids");
  }

  private w(name: string): Float64Array {
    const t = this.weights.get(name);
    if (!t) throw new Error(`missing tensor ${name}`);
    return t;
  }

  private layerNorm(x: Float64Array, prefix: string): Float64Array {
    const g = this.w(`${prefix}.weight`);
    const b = this.w(`${prefix}.bias`);
    const mean = x.reduce((s, v) => s + v, 0) / x.length;
    const variance = x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length;
    const scale = 1 / Math.sqrt(variance + this.config.layer_norm_eps);
    return x.map((v, i) => (v - mean) * scale * g[i]! + b[i]!);
  }

  private linear(prefix: string, x: Float64Array, out: number): Float64Array {
    const y = matVec(this.w(`${prefix}.weight`), x, out);
    const b = this.w(`${prefix}.bias`);
    return y.map((v, i) => v + b[i]!);
  }

  /** The last layer's hidden state of every token. */
  hiddenStates(tokens: readonly number[]): Float64Array[] {
    const { hidden_size: d, intermediate_size: ff, num_hidden_layers: layers, num_attention_heads: heads } = this.config;
    const headDim = d / heads;
    const word = this.w("embeddings.word_embeddings.weight");
    const position = this.w("embeddings.position_embeddings.weight");
    const type = this.w("embeddings.token_type_embeddings.weight");
    let h = tokens.map((t, pos) => {
      const x = new Float64Array(d);
      for (let i = 0; i < d; i++) {
        x[i] = word[t * d + i]! + (this.ablation.positions === false ? 0 : position[pos * d + i]!) + (this.ablation.tokenTypes === false ? 0 : type[i]!);
      }
      return this.layerNorm(x, "embeddings.LayerNorm");
    });
    for (let l = 0; l < layers; l++) {
      const p = `encoder.layer.${l}`;
      const q = h.map((x) => this.linear(`${p}.attention.self.query`, x, d));
      const k = h.map((x) => this.linear(`${p}.attention.self.key`, x, d));
      const v = h.map((x) => this.linear(`${p}.attention.self.value`, x, d));
      h = h.map((x, pos) => {
        const context = new Float64Array(d);
        for (let hd = 0; hd < heads; hd++) {
          const scores = k.map((kj) => {
            let s = 0;
            for (let i = 0; i < headDim; i++) s += q[pos]![hd * headDim + i]! * kj[hd * headDim + i]!;
            return s / Math.sqrt(headDim);
          });
          const probs = softmax(scores);
          for (let j = 0; j < tokens.length; j++) for (let i = 0; i < headDim; i++) context[hd * headDim + i]! += probs[j]! * v[j]![hd * headDim + i]!;
        }
        const attn = this.linear(`${p}.attention.output.dense`, context, d);
        const mid = this.layerNorm(attn.map((a, i) => a + x[i]!), `${p}.attention.output.LayerNorm`);
        const up = this.linear(`${p}.intermediate.dense`, mid, ff).map(gelu);
        const down = this.linear(`${p}.output.dense`, up, d);
        return this.layerNorm(down.map((o, i) => o + mid[i]!), `${p}.output.LayerNorm`);
      });
    }
    return h;
  }

  /** The sentence vector (not normalised) as sentence-transformers pools it, every token attended. */
  pooled(tokens: readonly number[], pooling: BertPooling): Float64Array {
    const h = this.hiddenStates(tokens);
    if (pooling === "cls") return h[0]!;
    if (pooling === "last") return h.at(-1)!;
    const mean = new Float64Array(h[0]!.length);
    for (const x of h) x.forEach((v, i) => (mean[i]! += v / h.length));
    return mean;
  }
}
