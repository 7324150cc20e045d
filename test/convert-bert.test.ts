import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Ollama } from "ollama";
import OpenAI from "openai";
import { convertHfFolder } from "../src/convert/convert.js";
import { metaString, readGguf } from "../src/formats/gguf.js";
import { type SafetensorsWriteTensor, writeSafetensors } from "../src/formats/safetensors-writer.js";
import type { RunningServer } from "../src/server/server.js";
import { type BertAblation, type BertPooling, BertReference } from "./helpers/bert-reference.js";
import { f32Data, randomTensor } from "./helpers/hf-fixtures.js";
import { loadGguf } from "./helpers/llama-run.js";
import { tempDir } from "./helpers/paths.js";
import { postJson, startTestServer } from "./helpers/server.js";

const tmp = tempDir();
after(() => tmp.cleanup());

/** A WordPiece vocabulary small enough to write the expected ids of every text by hand. */
const VOCAB = [
  "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cafe", "is", "open", "un", "##believ", "##able", "!", ",", ".", "'",
  "s", "hello", "world", "##s", "中", "文", "don", "t", "a", "##b", "##c", "b", "c", "?", "x", "##ing",
];
const id = (token: string): number => VOCAB.indexOf(token);
const [CLS, SEP, UNK] = [id("[CLS]"), id("[SEP]"), id("[UNK]")];

/**
 * Texts and their ids under an uncased BERT normalizer (lower-casing, accents stripped), written
 * by hand from BERT's rules: split on whitespace and punctuation, CJK ideographs one per word,
 * then longest-match-first WordPiece with "##" continuations; a word that cannot be split
 * whole becomes [UNK]; [CLS] … [SEP] around it.
 */
const UNCASED: [string, string[]][] = [
  ["Hello, World!", ["hello", ",", "world", "!"]],
  ["The Café's open.", ["the", "cafe", "'", "s", "open", "."]],
  ["unbelievable worlds", ["un", "##believ", "##able", "world", "##s"]],
  // "x" is a word of its own, but nothing continues it with "yz": the whole word is unknown.
  ["xyz hello", ["[UNK]", "hello"]],
  ["中文 is open", ["中", "文", "is", "open"]],
  ["don't\tOPEN\n", ["don", "'", "t", "open"]],
];
const expectedIds = (pieces: string[]): number[] => [CLS, ...pieces.map(id), SEP];

const DIMS = { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, vocab_size: VOCAB.length, max_position_embeddings: 16, type_vocab_size: 2, layer_norm_eps: 1e-12 };

/** LayerNorm gains of 1 ± 0.3: far from the identity, never near zero. */
function layerNormGain(name: string, size: number, seed: number): SafetensorsWriteTensor {
  const r = randomTensor(name, [size], seed, 0.3);
  return { ...r, data: f32Data(new Float32Array(r.data.buffer.slice(r.data.byteOffset, r.data.byteOffset + r.data.byteLength)).map((x) => 1 + x)) };
}

function bertTensors(): SafetensorsWriteTensor[] {
  const { hidden_size: d, intermediate_size: ff, vocab_size: vocab, max_position_embeddings: positions, type_vocab_size: types } = DIMS;
  let seed = 11;
  const t = (name: string, shape: number[], scale = 0.3) => randomTensor(name, shape, seed++, scale);
  const norm = (prefix: string) => [layerNormGain(`${prefix}.weight`, d, seed++), t(`${prefix}.bias`, [d], 0.1)];
  const linear = (prefix: string, out: number, inp: number) => [t(`${prefix}.weight`, [out, inp]), t(`${prefix}.bias`, [out], 0.1)];
  const tensors = [
    t("embeddings.word_embeddings.weight", [vocab, d], 0.5),
    t("embeddings.position_embeddings.weight", [positions, d], 0.5),
    t("embeddings.token_type_embeddings.weight", [types, d], 0.5),
    ...norm("embeddings.LayerNorm"),
    // Stored by many sentence-transformers checkpoints: an int64 buffer and the unused pooler.
    { name: "embeddings.position_ids", dtype: "I64", shape: [1, positions], data: Buffer.from(BigInt64Array.from({ length: positions }, (_, i) => BigInt(i)).buffer) },
    ...linear("pooler.dense", d, d),
  ];
  for (let i = 0; i < DIMS.num_hidden_layers; i++) {
    const p = `encoder.layer.${i}`;
    tensors.push(
      ...linear(`${p}.attention.self.query`, d, d), ...linear(`${p}.attention.self.key`, d, d), ...linear(`${p}.attention.self.value`, d, d),
      ...linear(`${p}.attention.output.dense`, d, d), ...norm(`${p}.attention.output.LayerNorm`),
      ...linear(`${p}.intermediate.dense`, ff, d), ...linear(`${p}.output.dense`, d, ff), ...norm(`${p}.output.LayerNorm`),
    );
  }
  return tensors;
}

/** nomic-embed-text v1.5's settings, at toy size: n_positions above the trained context, a vocabulary padded past the tokenizer's. */
const NOMIC_CONFIG = {
  architectures: ["NomicBertModel"], model_type: "nomic_bert", n_embd: 32, n_inner: 64, n_layer: 2, n_head: 4, n_positions: 64, max_trained_positions: 16,
  vocab_size: 40, type_vocab_size: 2, layer_norm_epsilon: 1e-12, rotary_emb_base: 1000, activation_function: "swiglu", prenorm: false, causal: false,
  qkv_proj_bias: false, mlp_fc1_bias: false, mlp_fc2_bias: false, rotary_emb_fraction: 1.0, rotary_emb_interleaved: false, rotary_emb_scale_base: null, rotary_scaling_factor: null,
};

function nomicTensors(): SafetensorsWriteTensor[] {
  const { n_embd: d, n_inner: ff, vocab_size: vocab, type_vocab_size: types } = NOMIC_CONFIG;
  let seed = 101;
  const t = (name: string, shape: number[], scale = 0.3) => randomTensor(name, shape, seed++, scale);
  const norm = (prefix: string) => [layerNormGain(`${prefix}.weight`, d, seed++), t(`${prefix}.bias`, [d], 0.1)];
  const tensors = [t("embeddings.word_embeddings.weight", [vocab, d], 0.5), t("embeddings.token_type_embeddings.weight", [types, d], 0.5), ...norm("emb_ln")];
  for (let i = 0; i < NOMIC_CONFIG.n_layer; i++) {
    const p = `encoder.layers.${i}`;
    tensors.push(
      t(`${p}.attn.Wqkv.weight`, [3 * d, d]), t(`${p}.attn.out_proj.weight`, [d, d]), ...norm(`${p}.norm1`),
      t(`${p}.mlp.fc11.weight`, [ff, d]), t(`${p}.mlp.fc12.weight`, [ff, d]), t(`${p}.mlp.fc2.weight`, [d, ff]), ...norm(`${p}.norm2`),
    );
  }
  return tensors;
}

interface FolderOptions {
  nomic?: boolean;
  pooling?: Record<string, unknown>;
  normalizer?: Record<string, unknown>;
  modules?: { type: string; path: string }[];
  config?: Record<string, unknown>;
}

const special = (content: string) => ({ id: id(content), content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });

/** A sentence-transformers BertModel folder as all-MiniLM / bge ship it, with random weights. */
function bertFolder(label: string, o: FolderOptions = {}): string {
  const dir = join(tmp.path, "models", label);
  mkdirSync(join(dir, "1_Pooling"), { recursive: true });
  const config = o.nomic ? NOMIC_CONFIG : { architectures: ["BertModel"], model_type: "bert", hidden_act: "gelu", position_embedding_type: "absolute", pad_token_id: 0, torch_dtype: "float32", ...DIMS };
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, ...o.config }));
  writeSafetensors(join(dir, "model.safetensors"), o.nomic ? nomicTensors() : bertTensors());
  writeFileSync(join(dir, "vocab.txt"), VOCAB.join("\n") + "\n");
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify({
    version: "1.0",
    added_tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].map(special),
    normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true, ...o.normalizer },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } }],
      pair: [],
      special_tokens: { "[CLS]": { id: "[CLS]", ids: [CLS], tokens: ["[CLS]"] }, "[SEP]": { id: "[SEP]", ids: [SEP], tokens: ["[SEP]"] } },
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab: Object.fromEntries(VOCAB.map((t, i) => [t, i])) },
  }));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ do_lower_case: true, cls_token: "[CLS]", sep_token: "[SEP]", unk_token: "[UNK]", pad_token: "[PAD]", mask_token: "[MASK]", model_max_length: 16, tokenizer_class: "BertTokenizer" }));
  const modules = o.modules ?? [
    { type: "sentence_transformers.models.Transformer", path: "" },
    { type: "sentence_transformers.models.Pooling", path: "1_Pooling" },
    { type: "sentence_transformers.models.Normalize", path: "2_Normalize" },
  ];
  writeFileSync(join(dir, "modules.json"), JSON.stringify(modules.map((m, i) => ({ idx: i, name: String(i), ...m }))));
  const pooling = { word_embedding_dimension: DIMS.hidden_size, pooling_mode_cls_token: false, pooling_mode_mean_tokens: true, pooling_mode_max_tokens: false, pooling_mode_mean_sqrt_len_tokens: false, pooling_mode_weightedmean_tokens: false, pooling_mode_lasttoken: false, include_prompt: true };
  writeFileSync(join(dir, "1_Pooling", "config.json"), JSON.stringify({ ...pooling, ...o.pooling }));
  return dir;
}

const norm = (v: ArrayLike<number>): number => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));
const cosine = (a: ArrayLike<number>, b: ArrayLike<number>): number => Array.from(a).reduce((s, x, i) => s + x * b[i]!, 0) / (norm(a) * norm(b));
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => Math.max(...Array.from(a, (x, i) => Math.abs(x - b[i]!)));
const unit = (v: ArrayLike<number>): number[] => Array.from(v, (x) => x / norm(v));

/**
 * Served vectors against the float64 reference. llama.cpp computes in float32 and tabulates
 * GELU's tanh form over F16 inputs where HF's BERT uses the exact erf form: unit vectors agree to
 * a cosine of 0.99999 and within 2e-3 per element (about 1% of a typical element of a
 * 32-dimensional unit vector, ~0.18), while any feature left out moves 1 − cosine by over 1e-2.
 */
const COSINE = 0.99999;
const ELEMENT = 2e-3;

function assertVectorMatches(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: dimensions`);
  const c = cosine(actual, expected);
  assert.ok(c >= COSINE, `${what}: cosine ${c}`);
  assert.ok(maxAbsDiff(unit(actual), unit(expected)) < ELEMENT, `${what}: max |Δ| ${maxAbsDiff(unit(actual), unit(expected))}`);
}

describe("BertModel (sentence-transformers) → GGUF", () => {
  it("writes llama.cpp's bert keys, tensors and WPM vocabulary", async () => {
    const dir = bertFolder("meta");
    const g = join(tmp.path, "meta.gguf");
    const r = await convertHfFolder(dir, g);
    assert.equal(r.architecture, "bert");
    const f = readGguf(g);
    assert.equal(metaString(f, "general.architecture"), "bert");
    assert.equal(f.metadata.get("bert.pooling_type"), 1, "mean, from 1_Pooling/config.json");
    assert.equal(f.metadata.get("bert.attention.causal"), false);
    assert.equal(f.metadata.get("bert.attention.layer_norm_epsilon"), Math.fround(1e-12));
    assert.equal(f.metadata.get("bert.context_length"), 16);
    assert.equal(f.metadata.get("tokenizer.ggml.token_type_count"), 2);
    assert.equal(metaString(f, "tokenizer.ggml.model"), "bert");
    assert.equal(f.metadata.get("tokenizer.ggml.bos_token_id"), CLS);
    assert.equal(f.metadata.get("tokenizer.ggml.seperator_token_id"), SEP);
    assert.equal(f.metadata.get("tokenizer.ggml.unknown_token_id"), UNK);
    assert.equal(f.metadata.get("tokenizer.ggml.normalizer.lowercase"), true);
    assert.equal(f.metadata.get("tokenizer.ggml.normalizer.strip_accents"), true);
    const tokens = f.metadata.get("tokenizer.ggml.tokens") as string[];
    // Word starts carry llama.cpp's phantom space, continuations lose "##", special tokens stay.
    assert.equal(tokens[id("hello")], "\u2581hello");
    assert.equal(tokens[id("##believ")], "believ");
    assert.equal(tokens[CLS], "[CLS]");
    const names = new Set(f.tensors.map((t) => t.name));
    for (const n of ["token_embd.weight", "position_embd.weight", "token_types.weight", "token_embd_norm.bias", "blk.1.attn_q.bias", "blk.1.attn_output_norm.weight", "blk.1.ffn_up.weight", "blk.1.layer_output_norm.bias"]) assert.ok(names.has(n), n);
    assert.ok(![...names].some((n) => n.includes("pooler") || n.includes("position_ids")), "the pooler and the position-id buffer are dropped");
  });

  it("llama.cpp's WPM tokenizer splits texts as BERT's WordPiece does (hand-written ids)", async () => {
    const uncased = join(tmp.path, "uncased.gguf");
    await convertHfFolder(bertFolder("uncased"), uncased);
    // A cased tokenizer (no lower-casing, accents kept) over the same lower-case vocabulary.
    const cased = join(tmp.path, "cased.gguf");
    await convertHfFolder(bertFolder("cased", { normalizer: { lowercase: false, strip_accents: false } }), cased);
    for (const [path, cases] of [
      [uncased, UNCASED.map(([text, pieces]) => [text, pieces] as const)],
      [cased, [["Hello, World!", ["[UNK]", ",", "[UNK]", "!"]], ["The Café's open.", ["[UNK]", "[UNK]", "'", "s", "open", "."]]] as const],
    ] as const) {
      const model = await loadGguf(path);
      try {
        for (const [text, pieces] of cases) assert.deepEqual(model.tokenize(text, false), pieces.map(id), `${path}: ${JSON.stringify(text)}`);
      } finally {
        await model.dispose();
      }
    }
  });

  it("NomicBertModel: writes llama.cpp's nomic-bert keys and tensors", async () => {
    const g = join(tmp.path, "nomic-meta.gguf");
    const r = await convertHfFolder(bertFolder("nomic-meta", { nomic: true }), g);
    assert.equal(r.architecture, "nomic-bert");
    const f = readGguf(g);
    assert.equal(f.metadata.get("nomic-bert.context_length"), 16, "the trained context, not n_positions");
    assert.equal(f.metadata.get("nomic-bert.rope.freq_base"), 1000);
    assert.equal(f.metadata.get("nomic-bert.pooling_type"), 1);
    assert.equal(f.metadata.get("nomic-bert.attention.causal"), false);
    assert.equal(f.metadata.get("nomic-bert.feed_forward_length"), 64);
    const tokens = f.metadata.get("tokenizer.ggml.tokens") as string[];
    assert.equal(tokens.length, 40, "the vocabulary padded to config.json's vocab_size");
    assert.equal(tokens[39], "[PAD39]");
    const names = new Set(f.tensors.map((t) => t.name));
    for (const n of ["token_types.weight", "token_embd_norm.weight", "blk.1.attn_qkv.weight", "blk.1.ffn_gate.weight", "blk.1.ffn_up.weight", "blk.1.layer_output_norm.bias"]) assert.ok(names.has(n), n);
    assert.ok(!names.has("position_embd.weight"));
  });

  it("refuses what llama.cpp cannot run, by name", async () => {
    const cases: [string, FolderOptions, RegExp][] = [
      ["max", { pooling: { pooling_mode_mean_tokens: false, pooling_mode_max_tokens: true } }, /pooling mode "pooling_mode_max_tokens" cannot be converted/],
      ["two-modes", { pooling: { pooling_mode_cls_token: true } }, /several pooling modes/],
      ["dense", { modules: [{ type: "sentence_transformers.models.Transformer", path: "" }, { type: "sentence_transformers.models.Pooling", path: "1_Pooling" }, { type: "sentence_transformers.models.Dense", path: "2_Dense" }] }, /module "sentence_transformers.models.Dense" \(2_Dense\) cannot be converted/],
      ["relu", { config: { hidden_act: "relu" } }, /hidden_act "relu" is not supported/],
      ["relative", { config: { position_embedding_type: "relative_key" } }, /position_embedding_type "relative_key"/],
      ["no-clean-text", { normalizer: { clean_text: false } }, /BertNormalizer with clean_text: false is not supported/],
      ["nomic-moe", { nomic: true, config: { moe_every_n_layers: 2 } }, /mixture-of-experts/],
      ["nomic-interleaved", { nomic: true, config: { rotary_emb_interleaved: true } }, /"rotary_emb_interleaved" is true/],
      ["nomic-bias", { nomic: true, config: { qkv_proj_bias: undefined } }, /"qkv_proj_bias" is true/],
    ];
    for (const [label, options, message] of cases) {
      await assert.rejects(convertHfFolder(bertFolder(`refused-${label}`, options), join(tmp.path, `refused-${label}.gguf`)), message, label);
    }
  });
});

describe("serving a BertModel folder for embeddings", () => {
  let server: RunningServer;
  let openai: OpenAI;
  let ollama: Ollama;
  const POOLINGS: Record<BertPooling, Record<string, unknown>> = {
    mean: {},
    cls: { pooling_mode_mean_tokens: false, pooling_mode_cls_token: true },
    last: { pooling_mode_mean_tokens: false, pooling_mode_lasttoken: true },
  };
  let reference: BertReference;
  let nomic: BertReference;

  before(async () => {
    for (const [pooling, fields] of Object.entries(POOLINGS)) bertFolder(`bert-${pooling}`, { pooling: fields });
    reference = new BertReference(join(tmp.path, "models", "bert-mean"));
    nomic = new BertReference(bertFolder("nomic-mean", { nomic: true }));
    const folders = [...Object.keys(POOLINGS).map((p) => `bert-${p}`), "nomic-mean"];
    server = await startTestServer({ modelPaths: folders.map((f) => join(tmp.path, "models", f)) }, (c) => {
      c.cacheDir = join(tmp.path, "cache");
    });
    openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "none", maxRetries: 0 });
    ollama = new Ollama({ host: server.url });
  });
  after(async () => {
    await server?.close();
  });

  it("each feature moves the reference vector far beyond the tolerance", () => {
    const ids = expectedIds(UNCASED[2]![1]);
    const base = reference.pooled(ids, "mean");
    const dir = join(tmp.path, "models", "bert-mean");
    const ablated = (a: BertAblation) => new BertReference(dir, a).pooled(ids, "mean");
    for (const [what, v, against] of [
      ["cls pooling", reference.pooled(ids, "cls")],
      ["last-token pooling", reference.pooled(ids, "last")],
      ["no token-type embedding", ablated({ tokenTypes: false })],
      ["no position embeddings", ablated({ positions: false })],
      ["no [CLS]/[SEP]", reference.pooled(ids.slice(1, -1), "mean")],
      ["Nomic without RoPE", new BertReference(join(tmp.path, "models", "nomic-mean"), { rope: false }).pooled(ids, "mean"), nomic.pooled(ids, "mean")],
    ] as const) {
      const change = 1 - cosine(v, against ?? base);
      assert.ok(change > 1000 * (1 - COSINE), `${what} moves the vector (1 − cosine = ${change})`);
    }
  });

  it("discovery lists the folders as embedding models", async () => {
    const models = (await openai.models.list()).data as unknown as { id: string; capabilities: string[] }[];
    assert.deepEqual(models.map((m) => m.id).sort(), ["bert-cls", "bert-last", "bert-mean", "nomic-mean"]);
    for (const m of models) assert.deepEqual(m.capabilities, ["embedding"]);
  });

  it("/v1/embeddings (openai SDK) converts on first use and returns the reference's unit vectors", async () => {
    const texts = UNCASED.map(([text]) => text);
    const res = await openai.embeddings.create({ model: "bert-mean", input: texts, encoding_format: "float" });
    assert.equal(res.data.length, texts.length);
    UNCASED.forEach(([text, pieces], i) => {
      const v = res.data[i]!.embedding;
      assert.ok(Math.abs(norm(v) - 1) < 1e-5, "L2-normalised");
      assertVectorMatches(v, reference.pooled(expectedIds(pieces), "mean"), JSON.stringify(text));
    });
    assert.equal(res.usage.prompt_tokens, UNCASED.reduce((n, [, pieces]) => n + pieces.length + 2, 0), "[CLS] and [SEP] counted");
    // It never generates: one slot for it, not the server's `parallel` (2 here); its embedding context is the model's own 16.
    const loaded = server.ctx.pool.info().find((m) => m.name === "bert-mean")!;
    assert.equal(server.ctx.config.parallel, 2);
    assert.equal(loaded.slots, 1);
    assert.equal(loaded.contextSize, DIMS.max_position_embeddings);
  });

  it("pools as each folder's 1_Pooling/config.json says (cls, last)", async () => {
    for (const pooling of ["cls", "last"] as const) {
      const res = await openai.embeddings.create({ model: `bert-${pooling}`, input: UNCASED[0]![0], encoding_format: "float" });
      assertVectorMatches(res.data[0]!.embedding, reference.pooled(expectedIds(UNCASED[0]![1]), pooling), pooling);
    }
  });

  it("NomicBertModel through /v1/embeddings: the reference's vectors (RoPE, SwiGLU)", async () => {
    const res = await openai.embeddings.create({ model: "nomic-mean", input: UNCASED.map(([text]) => text), encoding_format: "float" });
    UNCASED.forEach(([text, pieces], i) => assertVectorMatches(res.data[i]!.embedding, nomic.pooled(expectedIds(pieces), "mean"), `nomic ${JSON.stringify(text)}`));
  });

  it("Ollama /api/embed (ollama SDK) gives the same unit vectors; /api/embeddings the raw pooled one", async () => {
    const [text, pieces] = UNCASED[1]!;
    const expected = reference.pooled(expectedIds(pieces), "mean");
    const res = await ollama.embed({ model: "bert-mean", input: [text] });
    assertVectorMatches(res.embeddings[0]!, expected, "/api/embed");
    assert.ok(Math.abs(norm(res.embeddings[0]!) - 1) < 1e-5);
    const raw = await ollama.embeddings({ model: "bert-mean", prompt: text });
    assertVectorMatches(raw.embedding, expected, "/api/embeddings");
    assert.ok(Math.abs(norm(raw.embedding) / norm(expected) - 1) < 1e-3, `raw length ${norm(raw.embedding)} vs reference ${norm(expected)}`);
  });

  it("a chat or completion request to it is a clear 400", async () => {
    const chat = await postJson(`${server.url}/v1/chat/completions`, { model: "bert-mean", messages: [{ role: "user", content: "hi" }] });
    assert.equal(chat.status, 400);
    assert.match(chat.json.error.message, /embedding model/);
    const generate = await postJson(`${server.url}/api/generate`, { model: "bert-mean", prompt: "hi", stream: false });
    assert.equal(generate.status, 400);
    assert.match(generate.json.error, /embedding model/);
  });
});
