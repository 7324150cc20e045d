import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { FormatError } from "./errors.js";
import { readJsonObject } from "./json.js";
import { readWeightMap } from "./safetensors.js";

/** The parts of a Hugging Face `config.json` Shimmy uses; the raw object is kept for converters. */
export interface HfConfig {
  architectures: string[];
  modelType?: string;
  hiddenSize?: number;
  intermediateSize?: number;
  numLayers?: number;
  numHeads?: number;
  numKvHeads?: number;
  headDim?: number;
  vocabSize?: number;
  maxPositionEmbeddings?: number;
  ropeTheta?: number;
  ropeScaling?: Record<string, unknown>;
  rmsNormEps?: number;
  tieWordEmbeddings: boolean;
  torchDtype?: string;
  raw: Record<string, unknown>;
}

export interface HfTokenizerConfig {
  chatTemplate?: string;
  bosToken?: string;
  eosToken?: string;
  padToken?: string;
  unkToken?: string;
  addBosToken?: boolean;
  addEosToken?: boolean;
  raw: Record<string, unknown>;
}

export interface HfFolder {
  dir: string;
  config: HfConfig;
  tokenizerConfig?: HfTokenizerConfig;
  generationConfig?: Record<string, unknown>;
  /** Weight files: the shards of the index, or the *.safetensors files present. */
  weightFiles: string[];
  hasTokenizerJson: boolean;
}

const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

/** Special tokens in tokenizer_config.json are a string or an AddedToken object `{content: ...}`. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "object" && v !== null && typeof (v as { content?: unknown }).content === "string") {
    return (v as { content: string }).content;
  }
  return undefined;
}

export function parseHfConfig(path: string): HfConfig {
  return hfConfigFromObject(readJsonObject(path));
}

/** The HfConfig of a config.json object (converters rebuild one from a multimodal text_config). */
export function hfConfigFromObject(raw: Record<string, unknown>): HfConfig {
  // Multimodal configs nest the language model's settings under text_config.
  const text = (typeof raw.text_config === "object" && raw.text_config !== null ? raw.text_config : raw) as Record<string, unknown>;
  const archs = raw.architectures;
  return {
    architectures: Array.isArray(archs) ? archs.filter((a): a is string => typeof a === "string") : [],
    modelType: str(raw.model_type),
    hiddenSize: num(text.hidden_size) ?? num(text.n_embd) ?? num(text.d_model),
    intermediateSize: num(text.intermediate_size) ?? num(text.n_inner),
    numLayers: num(text.num_hidden_layers) ?? num(text.n_layer),
    numHeads: num(text.num_attention_heads) ?? num(text.n_head),
    numKvHeads: num(text.num_key_value_heads),
    headDim: num(text.head_dim),
    vocabSize: num(text.vocab_size),
    maxPositionEmbeddings: num(text.max_position_embeddings) ?? num(text.n_positions) ?? num(text.n_ctx),
    ropeTheta: num(text.rope_theta),
    ropeScaling: typeof text.rope_scaling === "object" && text.rope_scaling !== null ? (text.rope_scaling as Record<string, unknown>) : undefined,
    rmsNormEps: num(text.rms_norm_eps),
    tieWordEmbeddings: raw.tie_word_embeddings === true || text.tie_word_embeddings === true,
    torchDtype: str(raw.torch_dtype) ?? str(raw.dtype),
    raw,
  };
}

export function parseTokenizerConfig(path: string): HfTokenizerConfig {
  const raw = readJsonObject(path);
  let chatTemplate: string | undefined = str(raw.chat_template);
  // Some repos store several named templates; "default" is the one transformers uses.
  if (chatTemplate === undefined && Array.isArray(raw.chat_template)) {
    const named = (raw.chat_template as unknown[]).filter((t): t is { name?: unknown; template?: unknown } => typeof t === "object" && t !== null);
    chatTemplate = str(named.find((t) => t.name === "default")?.template) ?? str(named[0]?.template);
  }
  return {
    chatTemplate,
    bosToken: tokenText(raw.bos_token),
    eosToken: tokenText(raw.eos_token),
    padToken: tokenText(raw.pad_token),
    unkToken: tokenText(raw.unk_token),
    addBosToken: typeof raw.add_bos_token === "boolean" ? raw.add_bos_token : undefined,
    addEosToken: typeof raw.add_eos_token === "boolean" ? raw.add_eos_token : undefined,
    raw,
  };
}

/** True when `dir` looks like an HF model folder: config.json plus SafeTensors weights. */
export function isHfModelFolder(dir: string, entries?: string[]): boolean {
  const names = entries ?? safeReaddir(dir);
  return names.includes("config.json") && names.some((n) => n.endsWith(".safetensors") || n === "model.safetensors.index.json");
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

export function readHfFolder(dir: string): HfFolder {
  const names = safeReaddir(dir);
  if (!names.includes("config.json")) throw new FormatError(join(dir, "config.json"), undefined, "missing config.json");
  const config = parseHfConfig(join(dir, "config.json"));
  const tokenizerConfig = names.includes("tokenizer_config.json") ? parseTokenizerConfig(join(dir, "tokenizer_config.json")) : undefined;
  const generationConfig = names.includes("generation_config.json") ? readJsonObject(join(dir, "generation_config.json")) : undefined;
  let weightFiles: string[];
  if (names.includes("model.safetensors.index.json")) {
    const map = readWeightMap(join(dir, "model.safetensors.index.json"));
    weightFiles = [...new Set(Object.values(map))].sort().map((f) => join(dir, f));
  } else {
    weightFiles = names.filter((n) => n.endsWith(".safetensors")).sort().map((n) => join(dir, n));
  }
  return { dir, config, tokenizerConfig, generationConfig, weightFiles, hasTokenizerJson: names.includes("tokenizer.json") };
}

export interface HfTokenizerSummary {
  /** "llama" for SentencePiece-style BPE with byte fallback, "gpt2" for byte-level BPE, else the model type. */
  kind: string;
  modelType: string;
  vocabSize: number;
  addedTokens: number;
}

/** Reads tokenizer.json (can be many MB, so only inspect/convert call this, not discovery). */
export function readHfTokenizerSummary(dir: string): HfTokenizerSummary | undefined {
  const path = join(dir, "tokenizer.json");
  if (!existsSync(path)) return undefined;
  const raw = readJsonObject(path);
  const model = (typeof raw.model === "object" && raw.model !== null ? raw.model : {}) as { type?: unknown; vocab?: unknown; byte_fallback?: unknown };
  const modelType = str(model.type) ?? "unknown";
  const vocab = model.vocab;
  const vocabSize = Array.isArray(vocab) ? vocab.length : typeof vocab === "object" && vocab !== null ? Object.keys(vocab).length : 0;
  const pre = JSON.stringify(raw.pre_tokenizer ?? null);
  let kind = modelType.toLowerCase();
  if (modelType === "BPE" && model.byte_fallback === true) kind = "llama";
  else if (modelType === "BPE" && pre.includes("ByteLevel")) kind = "gpt2";
  else if (modelType === "Unigram") kind = "t5";
  else if (modelType === "WordPiece") kind = "bert";
  const added = Array.isArray(raw.added_tokens) ? raw.added_tokens.length : 0;
  return { kind, modelType, vocabSize, addedTokens: added };
}
