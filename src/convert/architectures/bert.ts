import { dirname } from "node:path";
import { GgufValueType } from "../../formats/gguf.js";
import type { GgufWriteValue } from "../../formats/gguf-writer.js";
import type { HfConfig } from "../../formats/hf-folder.js";
import type { SafetensorsTensor } from "../../formats/safetensors.js";
import { ConvertError } from "../errors.js";
import { LLAMA_POOLING, sentenceTransformersPooling } from "../sentence-transformers.js";
import { convertWordPieceTokenizer } from "../wordpiece.js";
import { type DecoderDims, decoderDims, f32, u32 } from "./decoder.js";
import type { ArchitectureConverter, TensorPlan } from "./types.js";

/** One encoder-layer tensor: HF name under the layer prefix → GGUF name under `blk.N.`, with its HF shape. */
export interface EncoderTensorSpec {
  hf: string;
  gguf: string;
  shape: (d: DecoderDims) => number[];
}

/** What BERT-family encoders (BertModel, NomicBertModel) differ in; the rest is shared. */
export interface EncoderFamily {
  hfArchitecture: string;
  ggufArchitecture: string;
  /** Family checks and its own `<arch>.*` keys; returns the context length to write. */
  check(c: HfConfig, d: DecoderDims, configPath: string): { context: number; metadata: [string, GgufWriteValue][] };
  /** Embedding-stage tensors: HF name → GGUF name, with the HF shape. */
  embeddings: (d: DecoderDims, typeVocab: number) => EncoderTensorSpec[];
  /** HF prefix of layer i's tensors. */
  layerPrefix: (i: number) => string;
  layer: EncoderTensorSpec[];
  /** Checkpoint tensors that are not part of the encoder, dropped on purpose. */
  ignored: readonly string[];
}

function typeVocabSize(c: HfConfig, configPath: string): number {
  const n = c.raw.type_vocab_size ?? 2;
  if (!Number.isInteger(n) || (n as number) < 1) throw new ConvertError(configPath, `config.json's "type_vocab_size" must be a positive integer, got ${JSON.stringify(c.raw.type_vocab_size)}`);
  return n as number;
}

/**
 * A converter for a BERT-family sentence encoder: non-causal, LayerNorm epsilon, token types,
 * pooling from the sentence-transformers modules, a WordPiece vocabulary; every checkpoint tensor
 * placed or dropped on purpose.
 */
export function encoderConverter(family: EncoderFamily): ArchitectureConverter {
  const arch = family.ggufArchitecture;
  return {
    hfArchitectures: [family.hfArchitecture],
    ggufArchitecture: arch,
    metadata(c, configPath) {
      const d = decoderDims(c, configPath);
      const { context, metadata } = family.check(c, d, configPath);
      const eps = c.raw.layer_norm_eps ?? c.raw.layer_norm_epsilon ?? 1e-12;
      if (typeof eps !== "number" || !(eps > 0)) throw new ConvertError(configPath, `config.json's "layer_norm_eps" must be a positive number, got ${JSON.stringify(eps)}`);
      return new Map([
        [`${arch}.context_length`, u32(context)],
        [`${arch}.embedding_length`, u32(d.hidden)],
        [`${arch}.feed_forward_length`, u32(d.ffn)],
        [`${arch}.block_count`, u32(d.layers)],
        [`${arch}.attention.head_count`, u32(d.heads)],
        [`${arch}.attention.layer_norm_epsilon`, f32(eps)],
        [`${arch}.attention.causal`, { type: GgufValueType.BOOL, value: false }],
        [`${arch}.pooling_type`, u32(LLAMA_POOLING[sentenceTransformersPooling(dirname(configPath))])],
        ["tokenizer.ggml.token_type_count", u32(typeVocabSize(c, configPath))],
        ...metadata,
      ]);
    },
    plan(c, tensors, configPath) {
      const d = decoderDims(c, configPath);
      family.check(c, d, configPath);
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
      const plan = (name: string, spec: EncoderTensorSpec, hf: string): TensorPlan => {
        const t = take(hf, spec.shape(d));
        return { name, shape: t.shape, sources: [t], keepF32: t.shape.length === 1 };
      };
      const plans = family.embeddings(d, typeVocabSize(c, configPath)).map((spec) => plan(spec.gguf, spec, spec.hf));
      for (let i = 0; i < d.layers; i++) {
        for (const spec of family.layer) plans.push(plan(`blk.${i}.${spec.gguf}`, spec, `${family.layerPrefix(i)}.${spec.hf}`));
      }
      for (const [name, t] of tensors) {
        if (!used.has(name) && !family.ignored.includes(name.slice(prefix.length))) {
          throw new ConvertError(t.file, `unexpected tensor "${name}": the ${family.hfArchitecture} converter does not know where it belongs`);
        }
      }
      return plans;
    },
    tokenizer: convertWordPieceTokenizer,
  };
}

/** A weight and its bias, both under `hf` / `gguf`. */
export const withBias = (hf: string, gguf: string, shape: (d: DecoderDims) => number[]): EncoderTensorSpec[] => [
  { hf: `${hf}.weight`, gguf: `${gguf}.weight`, shape },
  { hf: `${hf}.bias`, gguf: `${gguf}.bias`, shape: (d) => [shape(d)[0]!] },
];

const square = (d: DecoderDims) => [d.hidden, d.hidden];
/** A LayerNorm's (or bias's) shape. */
export const vector = (d: DecoderDims) => [d.hidden];

/** llama.cpp's bert graph uses GELU (its tanh form); HF's BERT activations of that family convert. */
const GELU = ["gelu", "gelu_new", "gelu_pytorch_tanh"];

/**
 * BERT encoders as sentence-transformers ship them (`BertModel`: all-MiniLM, bge, e5):
 * token + position + token-type embeddings, an embedding LayerNorm, post-LN encoder layers with
 * biases and GELU; non-causal, pooled as the folder's 1_Pooling/config.json says.
 */
export const bertConverter = encoderConverter({
  hfArchitecture: "BertModel",
  ggufArchitecture: "bert",
  check(c, d, configPath) {
    const act = c.raw.hidden_act ?? "gelu";
    if (typeof act !== "string" || !GELU.includes(act)) throw new ConvertError(configPath, `hidden_act ${JSON.stringify(act)} is not supported for BERT (llama.cpp's bert graph uses GELU)`);
    const positions = c.raw.position_embedding_type ?? "absolute";
    if (positions !== "absolute") throw new ConvertError(configPath, `position_embedding_type ${JSON.stringify(positions)} is not supported (llama.cpp's bert graph adds absolute position embeddings)`);
    return { context: d.context, metadata: [] };
  },
  embeddings: (_d, types) => [
    { hf: "embeddings.word_embeddings.weight", gguf: "token_embd.weight", shape: (d) => [d.vocab, d.hidden] },
    { hf: "embeddings.position_embeddings.weight", gguf: "position_embd.weight", shape: (d) => [d.context, d.hidden] },
    { hf: "embeddings.token_type_embeddings.weight", gguf: "token_types.weight", shape: (d) => [types, d.hidden] },
    ...withBias("embeddings.LayerNorm", "token_embd_norm", vector),
  ],
  layerPrefix: (i) => `encoder.layer.${i}`,
  layer: [
    ...withBias("attention.self.query", "attn_q", square),
    ...withBias("attention.self.key", "attn_k", square),
    ...withBias("attention.self.value", "attn_v", square),
    ...withBias("attention.output.dense", "attn_output", square),
    ...withBias("attention.output.LayerNorm", "attn_output_norm", vector),
    ...withBias("intermediate.dense", "ffn_up", (d) => [d.ffn, d.hidden]),
    ...withBias("output.dense", "ffn_down", (d) => [d.hidden, d.ffn]),
    ...withBias("output.LayerNorm", "layer_output_norm", vector),
  ],
  // The position-id buffer and the unused pooler head.
  ignored: ["embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"],
});
