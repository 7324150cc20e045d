/**
 * GGUF `tokenizer.*` metadata → Hugging Face tokenizer.json + tokenizer_config.json: the inverse
 * of src/convert/tokenizer.ts, so that converting the exported folder back writes the same vocabulary.
 */
import { type GgufFile, metaBool, metaNumber, metaString } from "../../formats/gguf.js";
import { ConvertError } from "../errors.js";
import { PRE_TOKENIZER_REGEXES } from "../tokenizer.js";

// llama.cpp token types.
const NORMAL = 1;
const UNKNOWN = 2;
const CONTROL = 3;
const USER_DEFINED = 4;
const UNUSED = 5;

export interface TokenizerFiles {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  /** Special token ids for config.json / generation_config.json. */
  ids: { bos?: number; eos?: number; pad?: number; unk?: number };
  vocabSize: number;
}

/** Byte-level BPE pre-tokenizers by llama.cpp name, as tokenizer.json writes them. */
function byteLevelPreTokenizer(pre: string, file: string): Record<string, unknown> {
  const regex = PRE_TOKENIZER_REGEXES[pre];
  if (regex !== undefined) {
    return {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: regex }, behavior: "Isolated", invert: false },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    };
  }
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  if (pre === "gpt-2") return byteLevel;
  if (pre === "smollm") return { type: "Sequence", pretokenizers: [{ type: "Digits", individual_digits: true }, byteLevel] };
  throw new ConvertError(file, `tokenizer.ggml.pre "${pre}" is not supported for export (supported: ${[...Object.keys(PRE_TOKENIZER_REGEXES), "gpt-2", "smollm"].join(", ")})`);
}

/**
 * SentencePiece-style merges from the scores, as transformers builds them from a SentencePiece
 * model: every split of a piece into two vocabulary pieces, pieces by descending score (ties in
 * id order), splits of one piece by the ids of their halves. BPE then applies merges in the order
 * llama.cpp's tokenizer picks the highest-scoring pair.
 */
function sentencePieceMerges(tokens: readonly string[], scores: readonly number[], types: readonly number[]): [string, string][] {
  const ids = new Map<string, number>();
  tokens.forEach((t, id) => {
    if (types[id] === NORMAL && !ids.has(t)) ids.set(t, id);
  });
  const pieces = [...ids.values()].filter((id) => [...tokens[id]!].length > 1);
  pieces.sort((a, b) => scores[b]! - scores[a]! || a - b);
  const merges: [string, string][] = [];
  for (const id of pieces) {
    const chars = [...tokens[id]!];
    const local: [string, string, number, number][] = [];
    for (let i = 1; i < chars.length; i++) {
      const l = chars.slice(0, i).join("");
      const r = chars.slice(i).join("");
      const li = ids.get(l);
      const ri = ids.get(r);
      if (li !== undefined && ri !== undefined) local.push([l, r, li, ri]);
    }
    local.sort((a, b) => a[2] - b[2] || a[3] - b[3]);
    for (const [l, r] of local) merges.push([l, r]);
  }
  return merges;
}

const array = <T>(f: GgufFile, key: string, check: (v: unknown) => v is T): T[] | undefined => {
  const v = f.metadata.get(key);
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every(check)) throw new ConvertError(f.path, `${key} is not an array of the expected type`);
  return v as T[];
};
const isString = (v: unknown): v is string => typeof v === "string";
const isNumber = (v: unknown): v is number => typeof v === "number";

/** Rebuilds the tokenizer files from a GGUF's vocabulary ("llama" SentencePiece-style or "gpt2" byte-level BPE). */
export function tokenizerFiles(f: GgufFile): TokenizerFiles {
  const model = metaString(f, "tokenizer.ggml.model");
  if (model !== "llama" && model !== "gpt2") {
    throw new ConvertError(f.path, `tokenizer.ggml.model "${model ?? "(none)"}" is not supported for export (supported: llama, gpt2)`);
  }
  const spm = model === "llama";
  const tokens = array(f, "tokenizer.ggml.tokens", isString);
  if (!tokens || tokens.length === 0) throw new ConvertError(f.path, "the GGUF has no tokenizer.ggml.tokens");
  const types = array(f, "tokenizer.ggml.token_type", isNumber) ?? tokens.map(() => NORMAL);
  if (types.length !== tokens.length) throw new ConvertError(f.path, `tokenizer.ggml.token_type has ${types.length} entries for ${tokens.length} tokens`);

  const id = (key: string): number | undefined => {
    const v = metaNumber(f, `tokenizer.ggml.${key}_token_id`);
    return v !== undefined && Number.isInteger(v) && v >= 0 && v < tokens.length ? v : undefined;
  };
  const ids = { bos: id("bos"), eos: id("eos"), pad: id("padding"), unk: id("unknown") };

  // Placeholders the converter writes for ids the tokenizer leaves unused are not tokens.
  const placeholder = (i: number): boolean => types[i] === UNUSED && tokens[i] === `[PAD${i}]`;
  const vocab: Record<string, number> = {};
  const added: Record<string, unknown>[] = [];
  const addedDecoder: Record<string, unknown> = {};
  tokens.forEach((text, i) => {
    if (placeholder(i)) return;
    const type = types[i]!;
    const isAdded = type === CONTROL || type === USER_DEFINED || type === UNKNOWN || type === UNUSED;
    // SentencePiece vocabularies keep special pieces in the model's vocabulary; byte-level BPE only lists them as added tokens.
    if (!isAdded || spm) {
      if (Object.hasOwn(vocab, text)) throw new ConvertError(f.path, `token ${JSON.stringify(text)} appears twice (ids ${vocab[text]} and ${i}); tokenizer.json cannot hold that`);
      vocab[text] = i;
    }
    if (isAdded) {
      const entry = { id: i, content: text, single_word: false, lstrip: false, rstrip: false, normalized: type === USER_DEFINED && spm, special: type !== USER_DEFINED };
      added.push(entry);
      const { id: _id, ...decoderEntry } = entry;
      addedDecoder[String(i)] = decoderEntry;
    }
  });

  const addBos = metaBool(f, "tokenizer.ggml.add_bos_token") ?? (spm && ids.bos !== undefined);
  const addEos = metaBool(f, "tokenizer.ggml.add_eos_token") ?? false;
  const text = (i: number | undefined): string | null => (i === undefined ? null : tokens[i]!);
  const special = (t: string | null, typeId: number) => ({ SpecialToken: { id: t, type_id: typeId } });
  const bosText = addBos ? text(ids.bos) : null;
  const eosText = addEos ? text(ids.eos) : null;
  const single = [...(bosText ? [special(bosText, 0)] : []), { Sequence: { id: "A", type_id: 0 } }, ...(eosText ? [special(eosText, 0)] : [])];
  const specialTokens: Record<string, unknown> = {};
  for (const [t, i] of [[bosText, ids.bos], [eosText, ids.eos]] as const) if (t) specialTokens[t] = { id: t, ids: [i], tokens: [t] };

  let tokenizerJson: Record<string, unknown>;
  if (spm) {
    const scores = array(f, "tokenizer.ggml.scores", isNumber);
    if (!scores || scores.length !== tokens.length) throw new ConvertError(f.path, "a SentencePiece-style (llama) vocabulary needs tokenizer.ggml.scores for every token");
    const spacePrefix = metaBool(f, "tokenizer.ggml.add_space_prefix") ?? true;
    const replace = { type: "Replace", pattern: { String: " " }, content: "▁" };
    tokenizerJson = {
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: added,
      normalizer: spacePrefix ? { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "▁" }, replace] } : replace,
      pre_tokenizer: null,
      post_processor: { type: "TemplateProcessing", single, pair: [...single, ...single.map((p) => ("Sequence" in p ? { Sequence: { id: "B", type_id: 1 } } : { SpecialToken: { ...p.SpecialToken, type_id: 1 } }))], special_tokens: specialTokens },
      decoder: {
        type: "Sequence",
        decoders: [{ type: "Replace", pattern: { String: "▁" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }, ...(spacePrefix ? [{ type: "Strip", content: " ", start: 1, stop: 0 }] : [])],
      },
      model: {
        type: "BPE", dropout: null, unk_token: text(ids.unk), continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false,
        vocab,
        merges: sentencePieceMerges(tokens, scores, types).map(([l, r]) => `${l} ${r}`),
      },
    };
  } else {
    const merges = array(f, "tokenizer.ggml.merges", isString);
    if (!merges) throw new ConvertError(f.path, "a byte-level BPE (gpt2) vocabulary needs tokenizer.ggml.merges");
    const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false };
    const pre = metaString(f, "tokenizer.ggml.pre") ?? "default";
    tokenizerJson = {
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: added,
      // GGUF records no normalizer (llama.cpp applies none); Qwen2's tokenizers all normalize to NFC.
      normalizer: pre === "qwen2" ? { type: "NFC" } : null,
      pre_tokenizer: byteLevelPreTokenizer(pre, f.path),
      post_processor: bosText || eosText ? { type: "Sequence", processors: [byteLevel, { type: "TemplateProcessing", single, pair: single, special_tokens: specialTokens }] } : byteLevel,
      decoder: byteLevel,
      model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "", fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
    };
  }

  const tokenizerConfig: Record<string, unknown> = {
    add_bos_token: addBos,
    add_eos_token: addEos,
    added_tokens_decoder: addedDecoder,
    bos_token: text(ids.bos),
    eos_token: text(ids.eos),
    unk_token: text(ids.unk),
    pad_token: text(ids.pad),
    clean_up_tokenization_spaces: false,
    tokenizer_class: spm ? "LlamaTokenizerFast" : "PreTrainedTokenizerFast",
  };
  const template = metaString(f, "tokenizer.chat_template");
  if (template !== undefined) tokenizerConfig.chat_template = template;
  return { tokenizerJson, tokenizerConfig, ids, vocabSize: tokens.length };
}
