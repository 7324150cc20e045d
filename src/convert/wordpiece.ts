import { join } from "node:path";
import { GgufValueType } from "../formats/gguf.js";
import type { GgufWriteValue } from "../formats/gguf-writer.js";
import type { HfFolder } from "../formats/hf-folder.js";
import { str, u32 } from "./architectures/decoder.js";
import { ConvertError } from "./errors.js";
import { readTokenizerFile } from "./tokenizer-file.js";

// llama.cpp token types.
const NORMAL = 1;
const UNKNOWN = 2;
const CONTROL = 3;
const UNUSED = 5;

/** llama.cpp's WPM tokenizer marks a word's first piece with this, where WordPiece marks the others with "##". */
const PHANTOM_SPACE = "\u2581";

interface WordPieceJson {
  model?: { type?: string; vocab?: unknown; unk_token?: unknown; continuing_subword_prefix?: unknown };
  added_tokens?: { id?: unknown; content?: unknown; special?: unknown }[];
  normalizer?: { type?: string; lowercase?: unknown; strip_accents?: unknown; clean_text?: unknown; handle_chinese_chars?: unknown } | null;
  pre_tokenizer?: { type?: string } | null;
  post_processor?: { type?: string; single?: unknown[]; cls?: unknown; sep?: unknown } | null;
}

/**
 * BertNormalizer's lowercase / strip_accents (strip_accents null follows lowercase, as in HF);
 * no normalizer changes nothing. llama.cpp's WPM tokenizer always drops control characters and
 * splits CJK ideographs, as BertNormalizer's clean_text / handle_chinese_chars do.
 */
function normalizerOptions(tj: WordPieceJson, file: string): { lowercase: boolean; stripAccents: boolean } {
  const n = tj.normalizer;
  if (n === null || n === undefined) return { lowercase: false, stripAccents: false };
  if (n.type !== "BertNormalizer") throw new ConvertError(file, `WordPiece normalizer "${String(n.type)}" is not supported (llama.cpp's WPM tokenizer implements BertNormalizer)`);
  for (const key of ["clean_text", "handle_chinese_chars"] as const) {
    if (n[key] === false) throw new ConvertError(file, `BertNormalizer with ${key}: false is not supported (llama.cpp's WPM tokenizer always applies it)`);
  }
  const lowercase = n.lowercase !== false;
  const stripAccents = typeof n.strip_accents === "boolean" ? n.strip_accents : lowercase;
  return { lowercase, stripAccents };
}

/** The special tokens the post-processor puts around a single text: [first, last]. */
function processorSpecials(tj: WordPieceJson): [string | undefined, string | undefined] {
  const p = tj.post_processor;
  if (!p) return [undefined, undefined];
  if (p.type === "BertProcessing" && Array.isArray(p.cls) && Array.isArray(p.sep)) return [String(p.cls[0]), String(p.sep[0])];
  if (p.type !== "TemplateProcessing" || !Array.isArray(p.single)) return [undefined, undefined];
  const special = (piece: unknown): string | undefined => {
    const id = (piece as { SpecialToken?: { id?: unknown } } | undefined)?.SpecialToken?.id;
    return typeof id === "string" ? id : undefined;
  };
  return [special(p.single[0]), p.single.length > 1 ? special(p.single.at(-1)) : undefined];
}

/**
 * A WordPiece tokenizer.json → GGUF `tokenizer.*` metadata for llama.cpp's WPM tokenizer
 * ("bert"): word-initial pieces get a phantom-space prefix and "##" continuations lose theirs
 * (special tokens stay as they are); CLS is llama.cpp's BOS and SEP its separator, added as the
 * post-processor adds them.
 */
export function convertWordPieceTokenizer(folder: HfFolder, vocabSize: number): Map<string, GgufWriteValue> {
  const file = join(folder.dir, "tokenizer.json");
  const tj = readTokenizerFile<WordPieceJson>(file);
  const model = tj.model;
  const vocab = model?.vocab;
  if (model?.type !== "WordPiece" || typeof vocab !== "object" || vocab === null || Array.isArray(vocab)) {
    throw new ConvertError(file, `tokenizer model "${model?.type ?? "missing"}" is not WordPiece`);
  }
  const prefix = model.continuing_subword_prefix ?? "##";
  if (prefix !== "##") throw new ConvertError(file, `WordPiece continuing_subword_prefix ${JSON.stringify(prefix)} is not supported (llama.cpp's WPM tokenizer expects "##")`);
  const pre = tj.pre_tokenizer?.type;
  if (pre !== "BertPreTokenizer") throw new ConvertError(file, `WordPiece pre-tokenizer "${String(pre ?? "none")}" is not supported (llama.cpp's WPM tokenizer implements BertPreTokenizer)`);
  const { lowercase, stripAccents } = normalizerOptions(tj, file);

  const byId = new Map<number, string>();
  const addToken = (id: unknown, text: unknown): void => {
    if (!Number.isSafeInteger(id) || (id as number) < 0 || typeof text !== "string") {
      throw new ConvertError(file, `token ${JSON.stringify(text)?.slice(0, 80)} has an invalid id ${JSON.stringify(id)?.slice(0, 80)}`);
    }
    if ((id as number) >= vocabSize) throw new ConvertError(file, `token id ${id as number} is outside config.json's vocab_size ${vocabSize}`);
    byId.set(id as number, text);
  };
  for (const [text, id] of Object.entries(vocab)) addToken(id, text);
  if (byId.size === 0) throw new ConvertError(file, "the tokenizer's vocabulary is empty");
  const added = Array.isArray(tj.added_tokens) ? tj.added_tokens : [];
  for (const a of added) addToken(a?.id, a?.content);
  const special = new Set(added.filter((a) => a?.special === true).map((a) => a.id as number));

  const idOf = (text: string | undefined): number | undefined => {
    if (text === undefined) return undefined;
    const a = added.find((t) => t.content === text);
    return a ? (a.id as number) : (vocab as Record<string, number>)[text];
  };
  const tc = folder.tokenizerConfig;
  const unk = idOf(tc?.unkToken ?? (typeof model.unk_token === "string" ? model.unk_token : "[UNK]"));
  if (unk === undefined) throw new ConvertError(file, "the WordPiece vocabulary has no unknown token (llama.cpp's WPM tokenizer needs one for words it cannot split)");

  const tokens: string[] = [];
  const types: number[] = [];
  for (let id = 0; id < vocabSize; id++) {
    const text = byId.get(id);
    if (text === undefined) {
      tokens.push(`[PAD${id}]`);
      types.push(UNUSED);
    } else if (id === unk || special.has(id)) {
      tokens.push(text);
      types.push(id === unk ? UNKNOWN : CONTROL);
    } else {
      tokens.push(text.startsWith("##") ? text.slice(2) : PHANTOM_SPACE + text);
      types.push(NORMAL);
    }
  }

  const [first, last] = processorSpecials(tj);
  const raw = tc?.raw ?? {};
  const named = (key: string): string | undefined => (typeof raw[key] === "string" ? (raw[key] as string) : undefined);
  const cls = idOf(named("cls_token") ?? first);
  const sep = idOf(named("sep_token") ?? last);
  const pad = idOf(tc?.padToken);
  const mask = idOf(named("mask_token"));

  const meta = new Map<string, GgufWriteValue>();
  meta.set("tokenizer.ggml.model", str("bert"));
  meta.set("tokenizer.ggml.pre", str("default"));
  meta.set("tokenizer.ggml.tokens", { type: GgufValueType.ARRAY, arrayType: GgufValueType.STRING, value: tokens });
  meta.set("tokenizer.ggml.token_type", { type: GgufValueType.ARRAY, arrayType: GgufValueType.INT32, value: types });
  meta.set("tokenizer.ggml.unknown_token_id", u32(unk));
  if (cls !== undefined) meta.set("tokenizer.ggml.bos_token_id", u32(cls));
  if (sep !== undefined) meta.set("tokenizer.ggml.seperator_token_id", u32(sep));
  if (pad !== undefined) meta.set("tokenizer.ggml.padding_token_id", u32(pad));
  if (mask !== undefined) meta.set("tokenizer.ggml.mask_token_id", u32(mask));
  // Written explicitly: llama.cpp's WPM defaults add both, whatever the post-processor says.
  meta.set("tokenizer.ggml.add_bos_token", { type: GgufValueType.BOOL, value: first !== undefined });
  meta.set("tokenizer.ggml.add_sep_token", { type: GgufValueType.BOOL, value: last !== undefined });
  meta.set("tokenizer.ggml.add_eos_token", { type: GgufValueType.BOOL, value: false });
  meta.set("tokenizer.ggml.normalizer.lowercase", { type: GgufValueType.BOOL, value: lowercase });
  meta.set("tokenizer.ggml.normalizer.strip_accents", { type: GgufValueType.BOOL, value: stripAccents });
  return meta;
}
