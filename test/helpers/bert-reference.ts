import { readFileSync } from "node:fs";
import { join } from "node:path";
import { matVec, readF64Weights, softmax, tensorNamed } from "./llama-reference.js";

export type BertPooling = "mean" | "cls" | "last";

/** Parts of the forward pass a test may switch off, to show each one changes the vector. */
export interface BertAblation {
  tokenTypes?: boolean;
  positions?: boolean;
  /** Nomic only: RoPE on q and k. */
  rope?: boolean;
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

/** rotate_half (NeoX) RoPE on each head of `x` at `position`, in place. */
function rope(x: Float64Array, heads: number, headDim: number, position: number, base: number): void {
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      const angle = position * Math.pow(base, (-2 * i) / headDim);
      const a = x[h * headDim + i]!;
      const b = x[h * headDim + i + half]!;
      x[h * headDim + i] = a * Math.cos(angle) - b * Math.sin(angle);
      x[h * headDim + i + half] = b * Math.cos(angle) + a * Math.sin(angle);
    }
  }
}

const silu = (x: number): number => x / (1 + Math.exp(-x));

interface EncoderConfig {
  architectures: string[];
  hidden_size?: number;
  n_embd?: number;
  intermediate_size?: number;
  n_inner?: number;
  num_hidden_layers?: number;
  n_layer?: number;
  num_attention_heads?: number;
  n_head?: number;
  layer_norm_eps?: number;
  layer_norm_epsilon?: number;
  rotary_emb_base?: number;
}

/**
 * An independent float64 forward pass of an HF `BertModel` or `NomicBertModel` folder (F32
 * weights), written from the HF modeling code's semantics. BERT: word + absolute position +
 * token-type-0 embeddings, an embedding LayerNorm, then per layer bidirectional multi-head
 * attention with biases, residual + LayerNorm, an exact-GELU MLP, residual + LayerNorm (post-LN).
 * Nomic: no position embeddings; a fused bias-free qkv with rotate-half RoPE; a SwiGLU MLP
 * (fc11 · silu(fc12)). Then sentence-transformers pooling.
 */
export class BertReference {
  private readonly weights: Map<string, Float64Array>;
  private readonly nomic: boolean;
  private readonly d: number;
  private readonly ff: number;
  private readonly layers: number;
  private readonly heads: number;
  private readonly eps: number;
  private readonly ropeBase: number;

  constructor(folder: string, private readonly ablation: BertAblation = {}) {
    const c: EncoderConfig = JSON.parse(readFileSync(join(folder, "config.json"), "utf8"));
    this.nomic = c.architectures[0] === "NomicBertModel";
    this.d = (c.hidden_size ?? c.n_embd)!;
    this.ff = (c.intermediate_size ?? c.n_inner)!;
    this.layers = (c.num_hidden_layers ?? c.n_layer)!;
    this.heads = (c.num_attention_heads ?? c.n_head)!;
    this.eps = (c.layer_norm_eps ?? c.layer_norm_epsilon)!;
    this.ropeBase = c.rotary_emb_base ?? 10000;
    this.weights = readF64Weights(folder, (name) => name !== "embeddings.position_ids");
  }

  private w(name: string): Float64Array {
    return tensorNamed(this.weights, name);
  }

  private layerNorm(x: Float64Array, prefix: string): Float64Array {
    const g = this.w(`${prefix}.weight`);
    const b = this.w(`${prefix}.bias`);
    const mean = x.reduce((s, v) => s + v, 0) / x.length;
    const variance = x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length;
    const scale = 1 / Math.sqrt(variance + this.eps);
    return x.map((v, i) => (v - mean) * scale * g[i]! + b[i]!);
  }

  /** W x (+ b where the checkpoint has a bias). */
  private linear(prefix: string, x: Float64Array, out: number): Float64Array {
    const y = matVec(this.w(`${prefix}.weight`), x, out);
    const b = this.weights.get(`${prefix}.bias`);
    return b ? y.map((v, i) => v + b[i]!) : y;
  }

  private embed(tokens: readonly number[]): Float64Array[] {
    const d = this.d;
    const word = this.w("embeddings.word_embeddings.weight");
    const position = this.nomic || this.ablation.positions === false ? undefined : this.w("embeddings.position_embeddings.weight");
    const type = this.ablation.tokenTypes === false ? undefined : this.w("embeddings.token_type_embeddings.weight");
    return tokens.map((t, pos) => {
      const x = new Float64Array(d);
      for (let i = 0; i < d; i++) x[i] = word[t * d + i]! + (position?.[pos * d + i] ?? 0) + (type?.[i] ?? 0);
      return this.layerNorm(x, this.nomic ? "emb_ln" : "embeddings.LayerNorm");
    });
  }

  /** Per token: q, k, v (heads × headDim each). */
  private qkv(p: string, h: Float64Array[]): { q: Float64Array[]; k: Float64Array[]; v: Float64Array[] } {
    const d = this.d;
    if (!this.nomic) {
      return {
        q: h.map((x) => this.linear(`${p}.attention.self.query`, x, d)),
        k: h.map((x) => this.linear(`${p}.attention.self.key`, x, d)),
        v: h.map((x) => this.linear(`${p}.attention.self.value`, x, d)),
      };
    }
    const fused = h.map((x) => this.linear(`${p}.attn.Wqkv`, x, 3 * d));
    const rotated = (from: number) =>
      fused.map((y, pos) => {
        const part = y.slice(from, from + d);
        if (this.ablation.rope !== false) rope(part, this.heads, d / this.heads, pos, this.ropeBase);
        return part;
      });
    return { q: rotated(0), k: rotated(d), v: fused.map((y) => y.slice(2 * d)) };
  }

  /** The last layer's hidden state of every token. */
  hiddenStates(tokens: readonly number[]): Float64Array[] {
    const { d, ff, heads } = this;
    const headDim = d / heads;
    let h = this.embed(tokens);
    for (let l = 0; l < this.layers; l++) {
      const p = this.nomic ? `encoder.layers.${l}` : `encoder.layer.${l}`;
      const { q, k, v } = this.qkv(p, h);
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
        if (this.nomic) {
          const attn = this.linear(`${p}.attn.out_proj`, context, d);
          const mid = this.layerNorm(attn.map((a, i) => a + x[i]!), `${p}.norm1`);
          const gate = this.linear(`${p}.mlp.fc12`, mid, ff);
          const act = this.linear(`${p}.mlp.fc11`, mid, ff).map((u, i) => u * silu(gate[i]!));
          const down = this.linear(`${p}.mlp.fc2`, act, d);
          return this.layerNorm(down.map((o, i) => o + mid[i]!), `${p}.norm2`);
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
