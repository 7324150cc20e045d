import { existsSync } from "node:fs";
import { join } from "node:path";
import { GgufValueType } from "../formats/gguf.js";
import type { GgufWriteValue } from "../formats/gguf-writer.js";
import type { HfFolder } from "../formats/hf-folder.js";
import { str, u32 } from "./architectures/decoder.js";
import { ConvertError } from "./errors.js";
import { readTokenizerFile } from "./tokenizer-file.js";

/**
 * Mistral's Tekken tokenizer (tekken.json, Mistral NeMo and later): tiktoken-style byte-level BPE
 * given as byte strings by rank, with the special tokens first. llama.cpp runs it as a "gpt2"
 * vocabulary with the "tekken" pre-tokenizer, whose regex is this one.
 */
export const TEKKEN_PATTERN =
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// llama.cpp token types.
const NORMAL = 1;
const CONTROL = 3;
const UNUSED = 5;

interface TekkenJson {
  config?: { pattern?: unknown; default_vocab_size?: unknown; default_num_special_tokens?: unknown };
  vocab?: { rank?: unknown; token_bytes?: unknown }[];
  special_tokens?: { rank?: unknown; token_str?: unknown }[];
}

/** True when the folder's vocabulary must come from tekken.json: it has one and no tokenizer.json (as llama.cpp decides). */
export function usesTekken(folder: HfFolder): boolean {
  return !folder.hasTokenizerJson && existsSync(join(folder.dir, "tekken.json"));
}

/** GPT-2's printable stand-in for each byte, the form byte-level BPE vocabularies are written in. */
const BYTE_TO_CHAR: string[] = (() => {
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) out.push(String.fromCodePoint(printable(b) ? b : next++));
  return out;
})();

const byteLevel = (bytes: string): string => Array.from(bytes, (c) => BYTE_TO_CHAR[c.charCodeAt(0)]!).join("");

const positiveInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v > 0;

/**
 * Merges rebuilt from ranks: every split of a token into two shorter tokens, ordered by the
 * token's rank, then by the parts' ranks. `pieces` are latin1 strings (one char per byte) by rank.
 */
function mergesFromRanks(pieces: string[], file: string): string[] {
  const rank = new Map(pieces.map((p, i) => [p, i]));
  const merges: string[] = [];
  for (let i = 256; i < pieces.length; i++) {
    const piece = pieces[i]!;
    const splits: [number, number, string][] = [];
    for (let j = 1; j < piece.length; j++) {
      const left = rank.get(piece.slice(0, j));
      const right = rank.get(piece.slice(j));
      if (left !== undefined && right !== undefined) splits.push([left, right, `${byteLevel(piece.slice(0, j))} ${byteLevel(piece.slice(j))}`]);
    }
    if (splits.length === 0) throw new ConvertError(file, `token of rank ${i} cannot be formed from two lower-ranked tokens`);
    splits.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    for (const s of splits) merges.push(s[2]);
  }
  return merges;
}

/** tekken.json → GGUF `tokenizer.*` metadata, as llama.cpp's converter writes it (ids: specials, then rank + specials). */
export function convertTekkenTokenizer(folder: HfFolder, vocabSize: number): Map<string, GgufWriteValue> {
  const file = join(folder.dir, "tekken.json");
  const tj = readTokenizerFile<TekkenJson>(file);
  const config = tj.config ?? {};
  if (config.pattern !== TEKKEN_PATTERN) throw new ConvertError(file, `unsupported pre-tokenizer pattern ${JSON.stringify(config.pattern)?.slice(0, 200)} (llama.cpp knows Tekken's own)`);
  const total = config.default_vocab_size;
  const specialCount = config.default_num_special_tokens;
  if (!positiveInt(total) || !positiveInt(specialCount) || specialCount >= total) {
    throw new ConvertError(file, `config.default_vocab_size ${JSON.stringify(total)} and default_num_special_tokens ${JSON.stringify(specialCount)} must be positive integers, the first larger`);
  }
  if (total > vocabSize) throw new ConvertError(file, `the tokenizer's ${total} tokens exceed config.json's vocab_size ${vocabSize}`);
  if (!Array.isArray(tj.special_tokens)) throw new ConvertError(file, "tekken.json has no special_tokens list (early Tekken files are not supported)");
  if (tj.special_tokens.length > specialCount) throw new ConvertError(file, `${tj.special_tokens.length} special tokens exceed default_num_special_tokens ${specialCount}`);
  const inner = total - specialCount;
  if (!Array.isArray(tj.vocab) || tj.vocab.length < inner) throw new ConvertError(file, `tekken.json's vocab must hold at least ${inner} tokens (default_vocab_size less the special tokens)`);

  const tokens: string[] = [];
  const types: number[] = [];
  // Specials fill ids 0..specialCount-1; ids the file does not name are reserved placeholders.
  for (let id = 0; id < specialCount; id++) {
    const s = tj.special_tokens[id];
    if (s !== undefined && (s.rank !== id || typeof s.token_str !== "string")) throw new ConvertError(file, `special token ${id} must have rank ${id} and a token_str`);
    tokens.push(s ? (s.token_str as string) : `<SPECIAL_${id}>`);
    types.push(CONTROL);
  }
  // Only the first `inner` ranks are used (tiktoken ignores the rest).
  const pieces: string[] = [];
  for (let rank = 0; rank < inner; rank++) {
    const v = tj.vocab[rank]!;
    if (v.rank !== rank || typeof v.token_bytes !== "string") throw new ConvertError(file, `vocab entry ${rank} must have rank ${rank} and base64 token_bytes`);
    const piece = Buffer.from(v.token_bytes, "base64").toString("latin1");
    if (piece.length === 0 || (rank < 256 && piece !== String.fromCharCode(rank))) throw new ConvertError(file, `vocab entry ${rank} has bytes that do not fit its rank`);
    pieces.push(piece);
    tokens.push(byteLevel(piece));
    types.push(NORMAL);
  }
  for (let id = total; id < vocabSize; id++) {
    tokens.push(`[PAD${id}]`);
    types.push(UNUSED);
  }

  const idOf = (text: string): number | undefined => {
    const id = tokens.indexOf(text);
    return id >= 0 && id < specialCount ? id : undefined;
  };
  const strings = (value: string[]): GgufWriteValue => ({ type: GgufValueType.ARRAY, arrayType: GgufValueType.STRING, value });
  const meta = new Map<string, GgufWriteValue>([
    ["tokenizer.ggml.model", str("gpt2")],
    ["tokenizer.ggml.pre", str("tekken")],
    ["tokenizer.ggml.tokens", strings(tokens)],
    ["tokenizer.ggml.token_type", { type: GgufValueType.ARRAY, arrayType: GgufValueType.INT32, value: types }],
    ["tokenizer.ggml.merges", strings(mergesFromRanks(pieces, file))],
  ]);
  for (const [key, text] of [["bos", "<s>"], ["eos", "</s>"], ["unknown", "<unk>"], ["padding", "<pad>"]] as const) {
    const id = idOf(text);
    if (id !== undefined) meta.set(`tokenizer.ggml.${key}_token_id`, u32(id));
  }
  // Mistral's tokenizers add BOS and never EOS.
  meta.set("tokenizer.ggml.add_bos_token", { type: GgufValueType.BOOL, value: true });
  meta.set("tokenizer.ggml.add_eos_token", { type: GgufValueType.BOOL, value: false });
  if (folder.tokenizerConfig?.chatTemplate) meta.set("tokenizer.chat_template", str(folder.tokenizerConfig.chatTemplate));
  return meta;
}
