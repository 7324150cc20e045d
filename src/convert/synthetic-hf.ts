import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeSafetensors } from "../formats/safetensors-writer.js";
import { xorshiftFloats } from "./random-weights.js";

export interface SyntheticHfOptions {
  hidden: number;
  layers: number;
  ffn: number;
  vocab: number;
  dtype: "BF16" | "F16" | "F32";
  seed: number;
  /** A tokenizer.json/tokenizer_config.json folder to copy (vocab is padded up to `vocab`). */
  tokenizerFrom: string;
}

/** Deterministic pseudo-random weights (xorshift32), as raw dtype bytes. */
function randomBytes(elements: number, dtype: SyntheticHfOptions["dtype"], seed: number): Buffer {
  const f = xorshiftFloats(elements, seed, 0.04);
  if (dtype === "F32") return Buffer.from(f.buffer);
  const out = Buffer.allocUnsafe(elements * 2);
  const bits = new Uint32Array(f.buffer);
  for (let i = 0; i < elements; i++) out.writeUInt16LE(dtype === "BF16" ? bits[i]! >>> 16 : 0x3c00, i * 2);
  return out;
}

/** Writes a random-weight HF LlamaForCausalLM folder; returns its size in bytes of weights. */
export function writeSyntheticHfLlama(dir: string, o: SyntheticHfOptions): number {
  mkdirSync(dir, { recursive: true });
  const heads = o.hidden / 64;
  const config = {
    architectures: ["LlamaForCausalLM"], model_type: "llama", hidden_size: o.hidden, intermediate_size: o.ffn,
    num_hidden_layers: o.layers, num_attention_heads: heads, num_key_value_heads: heads, vocab_size: o.vocab,
    max_position_embeddings: 2048, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: true,
    torch_dtype: o.dtype === "BF16" ? "bfloat16" : o.dtype === "F16" ? "float16" : "float32",
  };
  writeFileSync(join(dir, "config.json"), JSON.stringify(config, null, 2));
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) copyFileSync(join(o.tokenizerFrom, f), join(dir, f));
  let seed = o.seed;
  const t = (name: string, shape: number[]) => ({ name, dtype: o.dtype, shape, data: randomBytes(shape.reduce((a, b) => a * b, 1), o.dtype, seed++) });
  const tensors = [t("model.embed_tokens.weight", [o.vocab, o.hidden]), t("model.norm.weight", [o.hidden])];
  for (let i = 0; i < o.layers; i++) {
    const p = `model.layers.${i}`;
    tensors.push(
      t(`${p}.self_attn.q_proj.weight`, [o.hidden, o.hidden]), t(`${p}.self_attn.k_proj.weight`, [o.hidden, o.hidden]),
      t(`${p}.self_attn.v_proj.weight`, [o.hidden, o.hidden]), t(`${p}.self_attn.o_proj.weight`, [o.hidden, o.hidden]),
      t(`${p}.mlp.gate_proj.weight`, [o.ffn, o.hidden]), t(`${p}.mlp.up_proj.weight`, [o.ffn, o.hidden]), t(`${p}.mlp.down_proj.weight`, [o.hidden, o.ffn]),
      t(`${p}.input_layernorm.weight`, [o.hidden]), t(`${p}.post_attention_layernorm.weight`, [o.hidden]),
    );
  }
  writeSafetensors(join(dir, "model.safetensors"), tensors);
  return tensors.reduce((n, x) => n + x.data.length, 0);
}
