import { join } from "node:path";
import { GgufValueType } from "../formats/gguf.js";
import type { GgufWriteValue } from "../formats/gguf-writer.js";
import type { HfFolder } from "../formats/hf-folder.js";
import { str, u32 } from "./architectures/decoder.js";
import { ConvertError } from "./errors.js";
import { readTokenizerFile } from "./tokenizer-file.js";
import { TEKKEN_PATTERN } from "./tekken.js";

// llama.cpp token types.
const NORMAL = 1;
const UNKNOWN = 2;
const CONTROL = 3;
const USER_DEFINED = 4;
const UNUSED = 5;
const BYTE = 6;

interface TokenizerJson {
  model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[]; byte_fallback?: boolean; unk_token?: string };
  added_tokens?: { id: number; content: string; special?: boolean }[];
  normalizer?: unknown;
  pre_tokenizer?: unknown;
  post_processor?: unknown;
}

type TemplatePiece = { SpecialToken?: { id?: unknown } } | { Sequence?: unknown };
type PostProcessor = { type?: string; processors?: PostProcessor[]; single?: TemplatePiece[]; cls?: unknown; sep?: unknown };

/**
 * What tokenizer.json's post-processor adds around a single text: Llama-3-style tokenizers
 * declare BOS only there (a TemplateProcessing, often inside a Sequence with ByteLevel), with no
 * add_bos_token key in tokenizer_config.json. BERT/RoBERTa processors add CLS and SEP.
 */
function postProcessorSpecials(node: unknown): { bos?: string; eos?: string } {
  if (!node || typeof node !== "object") return {};
  const p = node as PostProcessor;
  if (p.type === "Sequence" && Array.isArray(p.processors)) {
    return p.processors.reduce<{ bos?: string; eos?: string }>((found, child) => ({ ...found, ...postProcessorSpecials(child) }), {});
  }
  if ((p.type === "BertProcessing" || p.type === "RobertaProcessing") && Array.isArray(p.cls) && Array.isArray(p.sep)) {
    return { bos: String(p.cls[0]), eos: String(p.sep[0]) };
  }
  if (p.type !== "TemplateProcessing" || !Array.isArray(p.single) || p.single.length === 0) return {};
  const special = (piece: TemplatePiece | undefined): string | undefined => {
    const id = piece && "SpecialToken" in piece ? piece.SpecialToken?.id : undefined;
    return typeof id === "string" ? id : undefined;
  };
  return { bos: special(p.single[0]), eos: p.single.length > 1 ? special(p.single[p.single.length - 1]) : undefined };
}

/** Pre-tokenizer regexes llama.cpp knows by name (llama-vocab.cpp), matched exactly. */
export const PRE_TOKENIZER_REGEXES: Record<string, string> = {
  qwen2: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  "llama-bpe": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  "gpt-2": "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
  // Mistral NeMo's tokenizer.json (the same regex as its tekken.json).
  tekken: TEKKEN_PATTERN,
  // GPT-4o-style (o200k) tokenizers, e.g. Phi-4-mini.
  "gpt-4o": "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};

type Node = { type?: string; pretokenizers?: Node[]; normalizers?: Node[]; pattern?: { Regex?: string; String?: string }; use_regex?: boolean; individual_digits?: boolean; prepend?: string; prepend_scheme?: string; add_prefix_space?: boolean };

function flatten(node: unknown, key: "pretokenizers" | "normalizers"): Node[] {
  if (!node || typeof node !== "object") return [];
  const n = node as Node;
  if (n.type === "Sequence") return (n[key] ?? []).flatMap((c) => flatten(c, key));
  return [n];
}

/** Names the llama.cpp pre-tokenizer for a byte-level BPE tokenizer.json, or refuses. */
export function detectPreTokenizer(pre: unknown, file: string): string {
  const parts = flatten(pre, "pretokenizers");
  const split = parts.find((p) => p.type === "Split");
  const byteLevel = parts.find((p) => p.type === "ByteLevel");
  const digits = parts.find((p) => p.type === "Digits");
  if (split?.pattern?.Regex) {
    for (const [name, re] of Object.entries(PRE_TOKENIZER_REGEXES)) if (split.pattern.Regex === re) return name;
    throw new ConvertError(file, `unsupported pre-tokenizer regex ${JSON.stringify(split.pattern.Regex)} (known: ${Object.keys(PRE_TOKENIZER_REGEXES).join(", ")}, smollm)`);
  }
  if (digits?.individual_digits && byteLevel?.use_regex !== false) return "smollm";
  if (byteLevel && byteLevel.use_regex !== false && parts.length === 1) return "gpt-2";
  throw new ConvertError(file, `unsupported pre-tokenizer ${JSON.stringify(pre)} (known: ${Object.keys(PRE_TOKENIZER_REGEXES).join(", ")}, smollm)`);
}

const mergePair = (m: string | [string, string]): [string, string] => {
  if (Array.isArray(m)) return m;
  const i = m.indexOf(" ", 1);
  return [m.slice(0, i), m.slice(i + 1)];
};

/**
 * tokenizer.json (+ tokenizer_config.json, config.json) → GGUF `tokenizer.*` metadata. Two kinds:
 * SentencePiece-style BPE with byte fallback → "llama" (tokens, scores, token types), and
 * byte-level BPE → "gpt2" (tokens, merges, token types, named pre-tokenizer).
 */
export function convertTokenizer(folder: HfFolder, vocabSize: number): Map<string, GgufWriteValue> {
  const file = join(folder.dir, "tokenizer.json");
  const tj = readTokenizerFile<TokenizerJson>(file);
  const model = tj.model;
  if (!model || typeof model !== "object" || model.type !== "BPE" || typeof model.vocab !== "object" || model.vocab === null || Array.isArray(model.vocab)) {
    throw new ConvertError(file, `tokenizer model "${model?.type ?? "missing"}" is not supported (BPE with byte fallback or byte-level BPE are)`);
  }
  const added = Array.isArray(tj.added_tokens) ? tj.added_tokens : [];
  const byId = new Map<number, string>();
  const addToken = (id: unknown, text: unknown): void => {
    if (!Number.isSafeInteger(id) || (id as number) < 0 || typeof text !== "string") {
      throw new ConvertError(file, `token ${JSON.stringify(text)?.slice(0, 80)} has an invalid id ${JSON.stringify(id)?.slice(0, 80)}`);
    }
    if ((id as number) >= vocabSize) throw new ConvertError(file, `token id ${id as number} is outside config.json's vocab_size ${vocabSize}`);
    byId.set(id as number, text);
  };
  for (const [tok, id] of Object.entries(model.vocab)) addToken(id, tok);
  for (const a of added) addToken(a?.id, a?.content);
  // A model with no vocabulary converts to a GGUF llama.cpp cannot tokenize with.
  if (Object.keys(model.vocab).length === 0) throw new ConvertError(file, "the tokenizer's vocabulary is empty");
  const idOf = (text: string | undefined): number | undefined => {
    if (text === undefined) return undefined;
    const a = added.find((t) => t.content === text);
    return a ? a.id : model.vocab![text];
  };
  const addedById = new Map(added.map((a) => [a.id, a]));
  const unk = idOf(folder.tokenizerConfig?.unkToken ?? model.unk_token);

  const spm = model.byte_fallback === true;
  const tokens: string[] = [];
  const types: number[] = [];
  for (let id = 0; id < vocabSize; id++) {
    const text = byId.get(id);
    const a = addedById.get(id);
    if (text === undefined) {
      tokens.push(`[PAD${id}]`);
      types.push(UNUSED);
    } else {
      tokens.push(text);
      if (id === unk) types.push(UNKNOWN);
      else if (a) types.push(a.special ? CONTROL : USER_DEFINED);
      else if (spm && /^<0x[0-9A-F]{2}>$/.test(text)) types.push(BYTE);
      else types.push(NORMAL);
    }
  }
  const merges = (model.merges ?? []).map(mergePair);

  const meta = new Map<string, GgufWriteValue>();
  const strings = (value: string[]): GgufWriteValue => ({ type: GgufValueType.ARRAY, arrayType: GgufValueType.STRING, value });
  meta.set("tokenizer.ggml.model", str(spm ? "llama" : "gpt2"));
  if (!spm) meta.set("tokenizer.ggml.pre", str(detectPreTokenizer(tj.pre_tokenizer, file)));
  meta.set("tokenizer.ggml.tokens", strings(tokens));
  if (spm) {
    // SentencePiece merges the adjacent pair whose result scores highest; BPE applies merges by
    // rank. Scoring each merged piece by minus its first merge rank makes the two agree.
    const scores = new Array<number>(vocabSize).fill(0);
    const seen = new Set<number>();
    merges.forEach(([l, r], rank) => {
      const id = model.vocab![l + r];
      if (id !== undefined && !seen.has(id)) {
        seen.add(id);
        scores[id] = -rank;
      }
    });
    // Pieces no merge produces can never be formed; rank them below every merge.
    for (let id = 0; id < vocabSize; id++) if (!seen.has(id) && types[id] === NORMAL && [...tokens[id]!].length > 1) scores[id] = -(merges.length + id);
    meta.set("tokenizer.ggml.scores", { type: GgufValueType.ARRAY, arrayType: GgufValueType.FLOAT32, value: scores });
  }
  meta.set("tokenizer.ggml.token_type", { type: GgufValueType.ARRAY, arrayType: GgufValueType.INT32, value: types });
  if (!spm) meta.set("tokenizer.ggml.merges", strings(merges.map(([l, r]) => `${l} ${r}`)));

  const tc = folder.tokenizerConfig;
  const cfg = folder.config.raw;
  const firstId = (v: unknown): number | undefined => (typeof v === "number" ? v : Array.isArray(v) && typeof v[0] === "number" ? v[0] : undefined);
  const processed = postProcessorSpecials(tj.post_processor);
  const bos = idOf(tc?.bosToken) ?? (tc?.raw.bos_token === null ? undefined : firstId(cfg.bos_token_id)) ?? idOf(processed.bos);
  const eos = idOf(tc?.eosToken) ?? firstId(cfg.eos_token_id);
  const pad = idOf(tc?.padToken) ?? firstId(cfg.pad_token_id);
  if (bos !== undefined) meta.set("tokenizer.ggml.bos_token_id", u32(bos));
  if (eos !== undefined) meta.set("tokenizer.ggml.eos_token_id", u32(eos));
  if (unk !== undefined) meta.set("tokenizer.ggml.unknown_token_id", u32(unk));
  if (pad !== undefined) meta.set("tokenizer.ggml.padding_token_id", u32(pad));
  // Written explicitly: llama.cpp's defaults differ per pre-tokenizer (llama-bpe adds BOS).
  // Precedence: tokenizer_config.json's explicit keys, then the post-processor, then the type's default.
  const processorAdds = (text: string | undefined): boolean | undefined => (text === undefined ? undefined : idOf(text) !== undefined);
  meta.set("tokenizer.ggml.add_bos_token", { type: GgufValueType.BOOL, value: tc?.addBosToken ?? processorAdds(processed.bos) ?? (spm && bos !== undefined) });
  meta.set("tokenizer.ggml.add_eos_token", { type: GgufValueType.BOOL, value: tc?.addEosToken ?? processorAdds(processed.eos) ?? false });
  if (spm) {
    const norms = flatten(tj.normalizer, "normalizers");
    const pres = flatten(tj.pre_tokenizer, "pretokenizers");
    const prepends = norms.some((n) => n.type === "Prepend" && n.prepend === "▁") || pres.some((p) => p.type === "Metaspace" && p.prepend_scheme !== "never" && p.add_prefix_space !== false);
    meta.set("tokenizer.ggml.add_space_prefix", { type: GgufValueType.BOOL, value: prepends });
  }
  if (tc?.chatTemplate) meta.set("tokenizer.chat_template", str(tc.chatTemplate));
  return meta;
}
