import { dirname } from "node:path";
import { GgufValueType } from "../../formats/gguf.js";
import type { HfConfig } from "../../formats/hf-folder.js";
import type { SafetensorsTensor } from "../../formats/safetensors.js";
import { ConvertError } from "../errors.js";
import { LLAMA_POOLING, sentenceTransformersPooling } from "../sentence-transformers.js";
import { convertWordPieceTokenizer } from "../wordpiece.js";
import { type DecoderDims, decoderDims, f32, u32 } from "./decoder.js";
import type { ArchitectureConverter, TensorPlan } from "./types.js";

/** llama.cpp's bert graph uses GELU (its tanh form); HF's BERT activations of that family convert. */
const GELU = ["gelu", "gelu_new", "gelu_pytorch_tanh"];

/** HF name under `encoder.layer.N.` → GGUF name under `blk.N.`, and the weight's shape. */
const LAYER: { hf: string; gguf: string; shape: (d: DecoderDims) => number[] }[] = [
  { hf: "attention.self.query", gguf: "attn_q", shape: (d) => [d.hidden, d.hidden] },
  { hf: "attention.self.key", gguf: "attn_k", shape: (d) => [d.hidden, d.hidden] },
  { hf: "attention.self.value", gguf: "attn_v", shape: (d) => [d.hidden, d.hidden] },
  { hf: "attention.output.dense", gguf: "attn_output", shape: (d) => [d.hidden, d.hidden] },
  { hf: "attention.output.LayerNorm", gguf: "attn_output_norm", shape: (d) => [d.hidden] },
  { hf: "intermediate.dense", gguf: "ffn_up", shape: (d) => [d.ffn, d.hidden] },
  { hf: "output.dense", gguf: "ffn_down", shape: (d) => [d.hidden, d.ffn] },
  { hf: "output.LayerNorm", gguf: "layer_output_norm", shape: (d) => [d.hidden] },
];

/** Stored but not part of the encoder: the position-id buffer, the unused pooler head. */
const IGNORED = ["embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"];

function checkConfig(c: HfConfig, configPath: string): void {
  const act = c.raw.hidden_act ?? "gelu";
  if (typeof act !== "string" || !GELU.includes(act)) throw new ConvertError(configPath, `hidden_act ${JSON.stringify(act)} is not supported for BERT (llama.cpp's bert graph uses GELU)`);
  const positions = c.raw.position_embedding_type ?? "absolute";
  if (positions !== "absolute") throw new ConvertError(configPath, `position_embedding_type ${JSON.stringify(positions)} is not supported (llama.cpp's bert graph adds absolute position embeddings)`);
}

function typeVocabSize(c: HfConfig, configPath: string): number {
  const n = c.raw.type_vocab_size ?? 2;
  if (!Number.isInteger(n) || (n as number) < 1) throw new ConvertError(configPath, `config.json's "type_vocab_size" must be a positive integer, got ${JSON.stringify(c.raw.type_vocab_size)}`);
  return n as number;
}

/**
 * BERT encoders as sentence-transformers ship them (`BertModel`: all-MiniLM, bge, e5):
 * token + position + token-type embeddings, an embedding LayerNorm, post-LN encoder layers with
 * biases and GELU; non-causal, pooled as the folder's 1_Pooling/config.json says.
 */
export const bertConverter: ArchitectureConverter = {
  hfArchitectures: ["BertModel"],
  ggufArchitecture: "bert",
  metadata(c, configPath) {
    checkConfig(c, configPath);
    const d = decoderDims(c, configPath);
    const eps = c.raw.layer_norm_eps ?? 1e-12;
    if (typeof eps !== "number" || !(eps > 0)) throw new ConvertError(configPath, `config.json's "layer_norm_eps" must be a positive number, got ${JSON.stringify(eps)}`);
    return new Map([
      ["bert.context_length", u32(d.context)],
      ["bert.embedding_length", u32(d.hidden)],
      ["bert.feed_forward_length", u32(d.ffn)],
      ["bert.block_count", u32(d.layers)],
      ["bert.attention.head_count", u32(d.heads)],
      ["bert.attention.layer_norm_epsilon", f32(eps)],
      ["bert.attention.causal", { type: GgufValueType.BOOL, value: false }],
      ["bert.pooling_type", u32(LLAMA_POOLING[sentenceTransformersPooling(dirname(configPath))])],
      ["tokenizer.ggml.token_type_count", u32(typeVocabSize(c, configPath))],
    ]);
  },
  plan(c, tensors, configPath) {
    checkConfig(c, configPath);
    const d = decoderDims(c, configPath);
    // BertForMaskedLM-style checkpoints prefix every name with "bert.".
    const prefix = tensors.has("bert.embeddings.word_embeddings.weight") ? "bert." : "";
    const used = new Set<string>();
    const take = (hf: string, shape: number[]): SafetensorsTensor => {
      // Old checkpoints name LayerNorm parameters gamma / beta.
      const legacy = hf.replace(/LayerNorm\.weight$/, "LayerNorm.gamma").replace(/LayerNorm\.bias$/, "LayerNorm.beta");
      const name = [prefix + hf, prefix + legacy].find((n) => tensors.has(n));
      if (name === undefined) throw new ConvertError(configPath, `tensor "${prefix + hf}" is missing from the checkpoint`);
      const t = tensors.get(name)!;
      if (t.shape.length !== shape.length || t.shape.some((v, i) => v !== shape[i])) throw new ConvertError(t.file, `tensor "${name}" has shape ${JSON.stringify(t.shape)}, config.json implies ${JSON.stringify(shape)}`);
      used.add(name);
      return t;
    };
    const plan = (name: string, t: SafetensorsTensor): TensorPlan => ({ name, shape: t.shape, sources: [t], keepF32: t.shape.length === 1 });
    const types = typeVocabSize(c, configPath);
    const plans: TensorPlan[] = [
      plan("token_embd.weight", take("embeddings.word_embeddings.weight", [d.vocab, d.hidden])),
      plan("position_embd.weight", take("embeddings.position_embeddings.weight", [d.context, d.hidden])),
      plan("token_types.weight", take("embeddings.token_type_embeddings.weight", [types, d.hidden])),
      plan("token_embd_norm.weight", take("embeddings.LayerNorm.weight", [d.hidden])),
      plan("token_embd_norm.bias", take("embeddings.LayerNorm.bias", [d.hidden])),
    ];
    for (let i = 0; i < d.layers; i++) {
      for (const spec of LAYER) {
        plans.push(plan(`blk.${i}.${spec.gguf}.weight`, take(`encoder.layer.${i}.${spec.hf}.weight`, spec.shape(d))));
        plans.push(plan(`blk.${i}.${spec.gguf}.bias`, take(`encoder.layer.${i}.${spec.hf}.bias`, [spec.shape(d)[0]!])));
      }
    }
    for (const [name, t] of tensors) {
      if (!used.has(name) && !IGNORED.includes(name.slice(prefix.length))) {
        throw new ConvertError(t.file, `unexpected tensor "${name}": the BertModel converter does not know where it belongs`);
      }
    }
    return plans;
  },
  tokenizer: convertWordPieceTokenizer,
};
