import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { LlamaModel } from "node-llama-cpp";
import { convertHfFolder } from "../src/convert/convert.js";
import { metaString, readGguf } from "../src/formats/gguf.js";
import { writeSafetensors } from "../src/formats/safetensors-writer.js";
import { randomTensor } from "./helpers/hf-fixtures.js";
import { loadGguf } from "./helpers/llama-run.js";
import { tempDir } from "./helpers/paths.js";

const tmp = tempDir();
after(() => tmp.cleanup());

/** Mistral NeMo's pre-tokenizer regex, as its tekken.json gives it. */
const PATTERN =
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** Five named specials; ids 5–9 are reserved (<SPECIAL_n>), as in Tekken's 1000. */
const SPECIALS = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]"];
const SPECIAL_COUNT = 10;

const utf8 = (s: string): Buffer => Buffer.from(s, "utf8");
/**
 * Merged tokens after the 256 bytes, in rank order; each is two lower-ranked tokens joined.
 * [e6 97] and [e6 9c] are partial UTF-8 (the first two bytes of 日 and 本).
 */
const MERGED = [
  ...["he", "ll", "llo", "hello", " w", "or", " wor", "ld", " world", "He", "Hello", "\u00e9", "h\u00e9"].map(utf8),
  Buffer.from([0xe6, 0x97]), utf8("\u65e5"), Buffer.from([0xe6, 0x9c]), utf8("\u672c"),
  ...["\u65e5\u672c", " t", "ex", " tex", " text", "!\n", "\n\n"].map(utf8),
];
/** Entries past default_vocab_size, which Tekken ignores. */
const UNUSED_TAIL = ["hellow", "xyz"].map((s) => Buffer.from(s, "utf8"));
const TOKENIZER_SIZE = SPECIAL_COUNT + 256 + MERGED.length;
/** config.json's vocab_size: the embedding has a few rows more than the tokenizer. */
const MODEL_VOCAB = TOKENIZER_SIZE + 6;

const RANKED = [...Array.from({ length: 256 }, (_, b) => Buffer.from([b])), ...MERGED];

function tekkenJson(edit: (j: Record<string, unknown>) => void = () => {}): string {
  const j: Record<string, unknown> = {
    config: { pattern: PATTERN, num_vocab_tokens: RANKED.length + UNUSED_TAIL.length, default_vocab_size: TOKENIZER_SIZE, default_num_special_tokens: SPECIAL_COUNT, version: "v7" },
    vocab: [...RANKED, ...UNUSED_TAIL].map((b, rank) => ({ rank, token_bytes: b.toString("base64"), token_str: b.toString("utf8") })),
    special_tokens: SPECIALS.map((token_str, rank) => ({ rank, token_str, is_control: true })),
  };
  edit(j);
  return JSON.stringify(j);
}

/** A random-weight MistralForCausalLM folder whose only tokenizer file is tekken.json. */
function mistralFolder(label: string, tekken = tekkenJson()): string {
  const dir = join(tmp.path, label);
  mkdirSync(dir, { recursive: true });
  const d = 64;
  writeFileSync(join(dir, "config.json"), JSON.stringify({
    architectures: ["MistralForCausalLM"], model_type: "mistral", hidden_size: d, intermediate_size: 128, num_hidden_layers: 1, num_attention_heads: 4,
    num_key_value_heads: 2, head_dim: 16, vocab_size: MODEL_VOCAB, max_position_embeddings: 512, rms_norm_eps: 1e-5, rope_theta: 1_000_000,
    tie_word_embeddings: false, torch_dtype: "float32", bos_token_id: 1, eos_token_id: 2,
  }));
  let seed = 5;
  const t = (name: string, shape: number[]) => randomTensor(name, shape, seed++);
  const p = "model.layers.0";
  writeSafetensors(join(dir, "model.safetensors"), [
    t("model.embed_tokens.weight", [MODEL_VOCAB, d]), t("lm_head.weight", [MODEL_VOCAB, d]), t("model.norm.weight", [d]),
    t(`${p}.self_attn.q_proj.weight`, [64, d]), t(`${p}.self_attn.k_proj.weight`, [32, d]), t(`${p}.self_attn.v_proj.weight`, [32, d]), t(`${p}.self_attn.o_proj.weight`, [d, 64]),
    t(`${p}.mlp.gate_proj.weight`, [128, d]), t(`${p}.mlp.up_proj.weight`, [128, d]), t(`${p}.mlp.down_proj.weight`, [d, 128]),
    t(`${p}.input_layernorm.weight`, [d]), t(`${p}.post_attention_layernorm.weight`, [d]),
  ]);
  writeFileSync(join(dir, "tekken.json"), tekken);
  return dir;
}

/**
 * The expected ids, computed here as Mistral's tokenizer does (tiktoken): special tokens split
 * out first (when parsed), the rest cut by the pattern, each piece's UTF-8 bytes merged pairwise
 * by lowest rank of the joined bytes (a whole piece in the vocabulary is one token); id = rank +
 * the special count.
 */
function expectedIds(text: string, parseSpecials: boolean, pattern = PATTERN): number[] {
  const rank = new Map(RANKED.map((b, i) => [b.toString("latin1"), i]));
  const bpe = (piece: string): number[] => {
    const bytes = Buffer.from(piece, "utf8").toString("latin1");
    if (rank.has(bytes)) return [rank.get(bytes)!];
    let parts = [...bytes];
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < parts.length; i++) {
        const r = rank.get(parts[i]! + parts[i + 1]!);
        if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
      }
      if (best < 0) break;
      parts = [...parts.slice(0, best), parts[best]! + parts[best + 1]!, ...parts.slice(best + 2)];
    }
    return parts.map((p) => rank.get(p)!);
  };
  const chunks = parseSpecials ? text.split(new RegExp(`(${SPECIALS.map((s) => s.replace(/[[\]/]/g, "\\$&")).join("|")})`)) : [text];
  return chunks.flatMap((chunk) => {
    const special = parseSpecials ? SPECIALS.indexOf(chunk) : -1;
    if (special >= 0) return [special];
    // (Node's RegExp has no inline (?i:…); the contractions are spelled out in both cases.)
    const re = new RegExp(pattern.replaceAll("(?i:'s|'t|'re|'ve|'m|'ll|'d)", "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"), "gu");
    return [...chunk.matchAll(re)].flatMap((m) => bpe(m[0]).map((r) => r + SPECIAL_COUNT));
  });
}

const TEXTS = ["hello world", "Hello world!\n\nhellow", "h\u00e9llo w\u00f6rld", "\u65e5\u672c\u8a9e text 42", "a  b\n c", "\u{1F642} x/y", "It's 2024"];

describe("Mistral Tekken tokenizer (tekken.json, no tokenizer.json) → GGUF", () => {
  let gguf = "";
  let model: LlamaModel;
  before(async () => {
    gguf = join(tmp.path, "tekken.gguf");
    await convertHfFolder(mistralFolder("tekken"), gguf);
    model = await loadGguf(gguf);
  });
  after(async () => {
    await model?.dispose();
  });

  it("writes a gpt2 vocabulary with the tekken pre-tokenizer, specials first", () => {
    const f = readGguf(gguf);
    assert.equal(metaString(f, "tokenizer.ggml.model"), "gpt2");
    assert.equal(metaString(f, "tokenizer.ggml.pre"), "tekken");
    const tokens = f.metadata.get("tokenizer.ggml.tokens") as string[];
    assert.equal(tokens.length, MODEL_VOCAB);
    assert.deepEqual(tokens.slice(0, SPECIAL_COUNT), [...SPECIALS, "<SPECIAL_5>", "<SPECIAL_6>", "<SPECIAL_7>", "<SPECIAL_8>", "<SPECIAL_9>"]);
    // Bytes in GPT-2's printable form: space is Ġ, newline Ċ.
    assert.equal(tokens[SPECIAL_COUNT + 0x20], "\u0120");
    assert.equal(tokens[SPECIAL_COUNT + 256 + MERGED.findIndex((b) => b.toString() === " world")], "\u0120world");
    assert.equal(tokens[MODEL_VOCAB - 1], `[PAD${MODEL_VOCAB - 1}]`);
    assert.ok(!tokens.includes("hellow"), "vocab entries past default_vocab_size are left out");
    const merges = f.metadata.get("tokenizer.ggml.merges") as string[];
    assert.equal(merges[0], "h e");
    assert.ok(merges.includes("\u0120wor ld"));
    assert.equal(f.metadata.get("tokenizer.ggml.bos_token_id"), 1);
    assert.equal(f.metadata.get("tokenizer.ggml.eos_token_id"), 2);
    assert.equal(f.metadata.get("tokenizer.ggml.unknown_token_id"), 0);
    assert.equal(f.metadata.get("tokenizer.ggml.add_bos_token"), true);
    assert.equal(f.metadata.get("tokenizer.ggml.add_eos_token"), false);
  });

  it("llama.cpp tokenizes like Mistral's tokenizer (pattern, then merges by rank), multi-byte text included", () => {
    for (const text of TEXTS) {
      const want = expectedIds(text, false);
      assert.deepEqual([...model.tokenize(text)], want, JSON.stringify(text));
      assert.equal(model.detokenize(model.tokenize(text)), text, `round trip of ${JSON.stringify(text)}`);
    }
    // The fixture exercises merging, byte tokens and whole-piece lookups, not only the latter.
    assert.ok(expectedIds("h\u00e9llo w\u00f6rld", false).length > 4);
  });

  it("special tokens are parsed when asked, and are plain text otherwise", () => {
    const text = "[INST]hello world[/INST]</s>";
    const parsed = expectedIds(text, true);
    assert.deepEqual(parsed.slice(0, 1), [3]);
    assert.deepEqual([...model.tokenize(text, true)], parsed);
    assert.deepEqual([...model.tokenize(text, false)], expectedIds(text, false));
    assert.equal(model.tokens.bos, 1);
    assert.equal(model.tokens.eos, 2);
  });

  it("refuses a tekken.json it cannot represent, by name", async () => {
    const refuses = async (label: string, edit: (j: Record<string, unknown>) => void, pattern: RegExp): Promise<void> => {
      await assert.rejects(convertHfFolder(mistralFolder(label, tekkenJson(edit)), join(tmp.path, `${label}.gguf`)), (e: Error) => {
        assert.match(e.message, pattern);
        return true;
      });
    };
    await refuses("tekken-pattern", (j) => ((j.config as Record<string, unknown>).pattern = "\\s+"), /tekken\.json: unsupported pre-tokenizer pattern "\\\\s\+"/);
    await refuses("tekken-old", (j) => delete j.special_tokens, /no special_tokens list/);
    await refuses("tekken-rank", (j) => ((j.vocab as { rank: number }[])[270]!.rank = 7), /vocab entry 270 must have rank 270/);
    await refuses("tekken-size", (j) => ((j.config as Record<string, unknown>).default_vocab_size = MODEL_VOCAB + 1), /exceed config\.json's vocab_size/);
  });
});

/** GPT-2's reversible byte → character table, as byte-level tokenizer.json files spell tokens. */
function gpt2ByteChars(): string[] {
  const keep = [...range(0x21, 0x7e), ...range(0xa1, 0xac), ...range(0xae, 0xff)];
  const chars: string[] = [];
  let shifted = 0;
  for (let b = 0; b < 256; b++) chars[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + shifted++);
  return chars;
}
function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** GPT-4o's (o200k) pre-tokenizer regex, as tokenizer.json files give it: Tekken's plus contractions and digit runs. */
const GPT4O_PATTERN =
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

describe("byte-level tokenizer.json with a Split regex of the Tekken family", () => {
  for (const [pre, pattern, label] of [["tekken", PATTERN, "Mistral NeMo's tokenizer.json"], ["gpt-4o", GPT4O_PATTERN, "a GPT-4o-style (o200k) tokenizer.json, e.g. Phi-4-mini's"]]) {
    it(`${label} is the ${pre} pre-tokenizer, used before tekken.json as in llama.cpp`, async () => {
      // tekken.json with a pattern llama.cpp does not know: converting from it would fail.
      const dir = mistralFolder(`hf-${pre}`, tekkenJson((j) => ((j.config as Record<string, unknown>).pattern = "\\s+")));
      const chars = gpt2ByteChars();
      const spell = (b: Buffer): string => [...b].map((x) => chars[x]).join("");
      const vocab = Object.fromEntries(RANKED.map((b, rank) => [spell(b), rank + SPECIAL_COUNT]));
      const known = new Set(RANKED.map((b) => b.toString("latin1")));
      const merges = MERGED.map((b) => {
        const s = b.toString("latin1");
        const cut = range(1, s.length - 1).find((i) => known.has(s.slice(0, i)) && known.has(s.slice(i)))!;
        return `${spell(b.subarray(0, cut))} ${spell(b.subarray(cut))}`;
      });
      const added = [...SPECIALS, ...range(SPECIALS.length, SPECIAL_COUNT - 1).map((i) => `<SPECIAL_${i}>`)].map((content, id) => ({ id, content, special: true, normalized: false }));
      writeFileSync(join(dir, "tokenizer.json"), JSON.stringify({
        added_tokens: added,
        pre_tokenizer: { type: "Sequence", pretokenizers: [{ type: "Split", pattern: { Regex: pattern }, behavior: "Isolated", invert: false }, { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false }] },
        model: { type: "BPE", vocab, merges, ignore_merges: true, byte_fallback: false },
      }));
      const g = join(tmp.path, `hf-${pre}.gguf`);
      await convertHfFolder(dir, g);
      assert.equal(metaString(readGguf(g), "tokenizer.ggml.pre"), pre);
      const model = await loadGguf(g);
      try {
        for (const text of TEXTS) assert.deepEqual([...model.tokenize(text)], expectedIds(text, false, pattern), JSON.stringify(text));
      } finally {
        await model.dispose();
      }
    });
  }
});
