import { existsSync, mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { GgufValueType } from "../formats/gguf.js";
import { type GgufWriteTensor, type GgufWriteValue, writeGguf } from "../formats/gguf-writer.js";
import { encode, FILE_TYPE_OF, GGML_TYPE_OF, type OutputType } from "./quantize.js";
import { xorshiftFloats } from "./random-weights.js";

export type SyntheticSize = "1m" | "10m" | "25m" | "50m" | "100m" | "300m";

/** Shapes that land near the named parameter counts (llama layout, head size 64, MHA). */
export const SYNTHETIC_SHAPES: Record<SyntheticSize, { hidden: number; layers: number; ffn: number }> = {
  "1m": { hidden: 128, layers: 4, ffn: 384 },
  "10m": { hidden: 320, layers: 8, ffn: 896 },
  "25m": { hidden: 512, layers: 8, ffn: 1536 },
  "50m": { hidden: 640, layers: 10, ffn: 1792 },
  "100m": { hidden: 768, layers: 14, ffn: 2048 },
  "300m": { hidden: 1024, layers: 23, ffn: 2816 },
};

/**
 * A small SentencePiece-style vocabulary (specials, 256 byte tokens, letters and "▁x" pieces):
 * enough for llama.cpp to tokenize any text; the model's output is gibberish by design.
 */
function vocabulary(): { tokens: string[]; scores: number[]; types: number[] } {
  const tokens = ["<unk>", "<s>", "</s>"];
  const types = [2, 3, 3];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(6);
  }
  const letters = "abcdefghijklmnopqrstuvwxyz";
  for (const a of letters) {
    tokens.push(a, `▁${a}`);
    types.push(1, 1);
    for (const b of letters) {
      tokens.push(`${a}${b}`, `▁${a}${b}`);
      types.push(1, 1);
    }
  }
  tokens.push("▁", ".", ",", "▁.");
  types.push(1, 1, 1, 1);
  const scores = tokens.map((t, i) => (types[i] === 1 && [...t].length > 1 ? -i : 0));
  return { tokens, scores, types };
}

/**
 * Writes (or reuses from `dir`) a random-weight llama GGUF of the given size and type,
 * deterministic by seed: the benchmark model, made without downloads.
 */
export async function syntheticLlamaGguf(dir: string, size: SyntheticSize, type: OutputType, seed = 1): Promise<string> {
  const path = join(dir, `synthetic-llama-v2-${size}-${type}-s${seed}.gguf`);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  const { hidden, layers, ffn } = SYNTHETIC_SHAPES[size];
  const heads = hidden / 64;
  const vocab = vocabulary();
  const u32 = (value: number): GgufWriteValue => ({ type: GgufValueType.UINT32, value });
  const f32 = (value: number): GgufWriteValue => ({ type: GgufValueType.FLOAT32, value });
  const meta = new Map<string, GgufWriteValue>([
    ["general.architecture", { type: GgufValueType.STRING, value: "llama" }],
    ["general.name", { type: GgufValueType.STRING, value: `synthetic-${size}` }],
    ["general.file_type", u32(FILE_TYPE_OF[type])],
    ["general.quantization_version", u32(2)],
    ["llama.context_length", u32(4096)],
    ["llama.embedding_length", u32(hidden)],
    ["llama.block_count", u32(layers)],
    ["llama.feed_forward_length", u32(ffn)],
    ["llama.attention.head_count", u32(heads)],
    ["llama.attention.head_count_kv", u32(heads)],
    ["llama.rope.dimension_count", u32(64)],
    ["llama.rope.freq_base", f32(10000)],
    ["llama.attention.layer_norm_rms_epsilon", f32(1e-5)],
    ["llama.vocab_size", u32(vocab.tokens.length)],
    ["tokenizer.ggml.model", { type: GgufValueType.STRING, value: "llama" }],
    ["tokenizer.ggml.tokens", { type: GgufValueType.ARRAY, arrayType: GgufValueType.STRING, value: vocab.tokens }],
    ["tokenizer.ggml.scores", { type: GgufValueType.ARRAY, arrayType: GgufValueType.FLOAT32, value: vocab.scores }],
    ["tokenizer.ggml.token_type", { type: GgufValueType.ARRAY, arrayType: GgufValueType.INT32, value: vocab.types }],
    ["tokenizer.ggml.bos_token_id", u32(1)],
    ["tokenizer.ggml.eos_token_id", u32(2)],
    ["tokenizer.ggml.unknown_token_id", u32(0)],
    ["tokenizer.ggml.add_bos_token", { type: GgufValueType.BOOL, value: true }],
  ]);
  let s = seed * 1000;
  const tensors: GgufWriteTensor[] = [];
  const add = (name: string, shape: number[], norm = false, edit?: (x: Float32Array) => void) => {
    const tseed = s++;
    const elements = shape.reduce((a, b) => a * b, 1);
    const t = norm ? "f32" : type;
    const values = (): Float32Array => {
      const x = norm ? new Float32Array(elements).fill(1) : xorshiftFloats(elements, tseed, 0.08);
      edit?.(x);
      return x;
    };
    tensors.push({ name, dims: [...shape].reverse(), type: GGML_TYPE_OF[t], data: () => encode(values(), t) });
  };
  add("token_embd.weight", [vocab.tokens.length, hidden]);
  add("output_norm.weight", [hidden], true);
  // Zero output rows for the specials and byte tokens: their logit is 0 while the best of the
  // ~1,400 other tokens is well above it, so greedy decoding never ends early (no EOS) and never
  // emits invalid UTF-8 — benchmarks need no logit_bias (which costs the two servers differently).
  add("output.weight", [vocab.tokens.length, hidden], false, (x) => x.fill(0, 0, 259 * hidden));
  for (let i = 0; i < layers; i++) {
    add(`blk.${i}.attn_norm.weight`, [hidden], true);
    add(`blk.${i}.attn_q.weight`, [hidden, hidden]);
    add(`blk.${i}.attn_k.weight`, [hidden, hidden]);
    add(`blk.${i}.attn_v.weight`, [hidden, hidden]);
    add(`blk.${i}.attn_output.weight`, [hidden, hidden]);
    add(`blk.${i}.ffn_norm.weight`, [hidden], true);
    add(`blk.${i}.ffn_gate.weight`, [ffn, hidden]);
    add(`blk.${i}.ffn_up.weight`, [ffn, hidden]);
    add(`blk.${i}.ffn_down.weight`, [hidden, ffn]);
  }
  const tmp = `${path}.tmp-${process.pid}`;
  await writeGguf(tmp, meta, tensors);
  renameSync(tmp, path);
  return path;
}
