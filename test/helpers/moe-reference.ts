import { readFileSync } from "node:fs";
import { join } from "node:path";
import { matVec, readF64Weights, rmsNorm, softmax, tensorNamed } from "./llama-reference.js";

/** The config.json keys the Qwen3-MoE / Qwen2-MoE / Mixtral forward pass reads. */
export interface MoeConfig {
  architectures: string[];
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim?: number;
  rms_norm_eps: number;
  rope_theta: number;
  /** Qwen: number of routed experts (Mixtral: num_local_experts). */
  num_experts?: number;
  num_local_experts?: number;
  num_experts_per_tok: number;
  /** Qwen: width of each routed expert (Mixtral: intermediate_size). */
  moe_intermediate_size?: number;
  /** Qwen: renormalise the top-k routing weights (Mixtral always does). */
  norm_topk_prob?: boolean;
  /** Qwen2-MoE: width of the shared expert. */
  shared_expert_intermediate_size?: number;
}

export interface MoeOptions {
  /** Route each token to the experts one index above the ones its router picks (keeping the weights). */
  misroute?: boolean;
}

const silu = (x: number): number => x / (1 + Math.exp(-x));
const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/**
 * An independent float64 forward pass of an HF `Qwen3MoeForCausalLM`, `Qwen2MoeForCausalLM` or
 * `MixtralForCausalLM` folder (F32 weights), written from the HF modeling code's semantics:
 * RMSNorm, q/k/v projections (Qwen2-MoE: with biases), per-head q/k RMSNorm (Qwen3-MoE),
 * rotate_half RoPE, grouped-query causal attention, then a sparse MoE block: router logits →
 * softmax over all experts → top-k → (renormalised when norm_topk_prob, always for Mixtral) →
 * weighted sum of the chosen SwiGLU experts; Qwen2-MoE adds a shared SwiGLU expert scaled by
 * sigmoid(shared_expert_gate · x). The output head is lm_head, or the embeddings when tied.
 */
export class MoeReference {
  private readonly weights: Map<string, Float64Array>;
  readonly config: MoeConfig;
  private readonly family: "qwen3moe" | "qwen2moe" | "mixtral";
  /** Every expert index chosen so far, per layer (to show that routing varies across tokens). */
  readonly chosen: Set<number>[] = [];

  constructor(
    folder: string,
    overrides: Partial<MoeConfig> = {},
    private readonly options: MoeOptions = {},
  ) {
    this.config = { ...JSON.parse(readFileSync(join(folder, "config.json"), "utf8")), ...overrides };
    const arch = this.config.architectures[0];
    this.family = arch === "MixtralForCausalLM" ? "mixtral" : arch === "Qwen2MoeForCausalLM" ? "qwen2moe" : "qwen3moe";
    this.weights = readF64Weights(folder);
    for (let l = 0; l < this.config.num_hidden_layers; l++) this.chosen.push(new Set());
  }

  private w(name: string): Float64Array {
    return tensorNamed(this.weights, name);
  }

  private get headDim(): number {
    return this.config.head_dim ?? this.config.hidden_size / this.config.num_attention_heads;
  }

  private rmsNorm(x: Float64Array, weight: Float64Array): Float64Array {
    return rmsNorm(x, weight, this.config.rms_norm_eps);
  }

  /** Projection, bias (Qwen2-MoE), per-head RMSNorm (Qwen3-MoE q/k), then rotate_half RoPE at `position`. */
  private project(p: string, which: "q" | "k" | "v", x: Float64Array, heads: number, position: number): Float64Array {
    const hd = this.headDim;
    let v = matVec(this.w(`${p}.${which}_proj.weight`), x, heads * hd);
    if (this.family === "qwen2moe") {
      const b = this.w(`${p}.${which}_proj.bias`);
      v = v.map((y, i) => y + b[i]!);
    }
    if (which === "v") return v;
    if (this.family === "qwen3moe") {
      const g = this.w(`${p}.${which}_norm.weight`);
      for (let h = 0; h < heads; h++) v.set(this.rmsNorm(v.subarray(h * hd, (h + 1) * hd), g), h * hd);
    }
    const half = hd / 2;
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < half; i++) {
        const angle = position * Math.pow(this.config.rope_theta, (-2 * i) / hd);
        const a = v[h * hd + i]!;
        const b = v[h * hd + i + half]!;
        v[h * hd + i] = a * Math.cos(angle) - b * Math.sin(angle);
        v[h * hd + i + half] = b * Math.cos(angle) + a * Math.sin(angle);
      }
    }
    return v;
  }

  private attention(l: number, xs: Float64Array[]): Float64Array[] {
    const { num_attention_heads: heads, num_key_value_heads: kvHeads, hidden_size: d } = this.config;
    const hd = this.headDim;
    const p = `model.layers.${l}.self_attn`;
    const q = xs.map((x, pos) => this.project(p, "q", x, heads, pos));
    const k = xs.map((x, pos) => this.project(p, "k", x, kvHeads, pos));
    const v = xs.map((x, pos) => this.project(p, "v", x, kvHeads, pos));
    return xs.map((_, pos) => {
      const out = new Float64Array(heads * hd);
      for (let h = 0; h < heads; h++) {
        const kv = Math.floor(h / (heads / kvHeads));
        const scores = Array.from({ length: pos + 1 }, (_, j) => {
          let s = 0;
          for (let i = 0; i < hd; i++) s += q[pos]![h * hd + i]! * k[j]![kv * hd + i]!;
          return s / Math.sqrt(hd);
        });
        const probs = softmax(scores);
        for (let j = 0; j <= pos; j++) for (let i = 0; i < hd; i++) out[h * hd + i]! += probs[j]! * v[j]![kv * hd + i]!;
      }
      return matVec(this.w(`${p}.o_proj.weight`), out, d);
    });
  }

  /** A SwiGLU MLP: down(silu(gate x) * up x). */
  private swiglu(gate: string, up: string, down: string, x: Float64Array, width: number): Float64Array {
    const g = matVec(this.w(gate), x, width);
    const u = matVec(this.w(up), x, width);
    return matVec(this.w(down), g.map((v, i) => silu(v) * u[i]!), x.length);
  }

  private moe(l: number, x: Float64Array): Float64Array {
    const c = this.config;
    const experts = c.num_experts ?? c.num_local_experts!;
    const mixtral = this.family === "mixtral";
    const p = mixtral ? `model.layers.${l}.block_sparse_moe` : `model.layers.${l}.mlp`;
    const probs = softmax(matVec(this.w(`${p}.gate.weight`), x, experts));
    const top = [...probs.keys()].sort((a, b) => probs[b]! - probs[a]!).slice(0, c.num_experts_per_tok);
    const sum = top.reduce((s, e) => s + probs[e]!, 0);
    const normalise = mixtral || c.norm_topk_prob === true;
    const out = new Float64Array(x.length);
    for (const e of top) {
      const expert = this.options.misroute ? (e + 1) % experts : e;
      this.chosen[l]!.add(expert);
      const q = `${p}.experts.${expert}`;
      const y = mixtral
        ? this.swiglu(`${q}.w1.weight`, `${q}.w3.weight`, `${q}.w2.weight`, x, c.intermediate_size)
        : this.swiglu(`${q}.gate_proj.weight`, `${q}.up_proj.weight`, `${q}.down_proj.weight`, x, c.moe_intermediate_size!);
      const weight = normalise ? probs[e]! / sum : probs[e]!;
      for (let i = 0; i < out.length; i++) out[i]! += weight * y[i]!;
    }
    if (this.family === "qwen2moe") {
      const s = `${p}.shared_expert`;
      const y = this.swiglu(`${s}.gate_proj.weight`, `${s}.up_proj.weight`, `${s}.down_proj.weight`, x, c.shared_expert_intermediate_size!);
      const gate = sigmoid(matVec(this.w(`${p}.shared_expert_gate.weight`), x, 1)[0]!);
      for (let i = 0; i < out.length; i++) out[i]! += gate * y[i]!;
    }
    return out;
  }

  nextTokenLogits(tokens: readonly number[]): Float64Array {
    const d = this.config.hidden_size;
    const embed = this.w("model.embed_tokens.weight");
    let h = tokens.map((t) => embed.slice(t * d, (t + 1) * d));
    for (let l = 0; l < this.config.num_hidden_layers; l++) {
      const p = `model.layers.${l}`;
      const attn = this.attention(l, h.map((x) => this.rmsNorm(x, this.w(`${p}.input_layernorm.weight`))));
      h = h.map((x, pos) => {
        const mid = x.map((v, i) => v + attn[pos]![i]!);
        const ffn = this.moe(l, this.rmsNorm(mid, this.w(`${p}.post_attention_layernorm.weight`)));
        return mid.map((v, i) => v + ffn[i]!);
      });
    }
    const final = this.rmsNorm(h.at(-1)!, this.w("model.norm.weight"));
    const head = this.weights.get("lm_head.weight") ?? embed;
    return matVec(head, final, head.length / d);
  }

  nextTokenProbabilities(tokens: readonly number[]): Float64Array {
    return softmax(this.nextTokenLogits(tokens));
  }

}
