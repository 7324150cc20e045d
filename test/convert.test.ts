import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { llama3RopeFactors } from "../src/convert/architectures/decoder.js";
import { ConversionCache } from "../src/convert/cache.js";
import { convertHfFolder } from "../src/convert/convert.js";
import { ConvertError } from "../src/convert/errors.js";
import { metaString, readGguf } from "../src/formats/gguf.js";
import { parseHfConfig } from "../src/formats/hf-folder.js";
import { asF32, copyHfFolder, f32Data, randomTensor } from "./helpers/hf-fixtures.js";
import { greedy, loadGguf } from "./helpers/llama-run.js";
import { MODELS_DIR, QWEN_HF, STORIES_HF, tempDir } from "./helpers/paths.js";
import { golden as storiesGolden } from "./helpers/server.js";

const qwenGolden = JSON.parse(readFileSync(join(MODELS_DIR, "tiny-qwen2", "golden.json"), "utf8"));
const tmp = tempDir();
after(() => tmp.cleanup());
let n = 0;
const out = (label: string): string => join(tmp.path, `${label}-${++n}.gguf`);

/** stories260K golden: greedy 128 tokens after "<s>Once upon a time". */
async function assertStoriesGolden(gguf: string, tokens = 128): Promise<void> {
  const model = await loadGguf(gguf);
  try {
    const g = storiesGolden.greedy[1]!;
    const { ids } = await greedy(model, g.promptIdsWithBos, tokens);
    assert.deepEqual(ids, g.ids.slice(0, tokens));
  } finally {
    await model.dispose();
  }
}

describe("stories260K/hf (llama, SentencePiece-style BPE, F32) → GGUF", () => {
  let gguf: string;
  before(async () => {
    gguf = out("stories");
    const r = await convertHfFolder(STORIES_HF, gguf);
    assert.equal(r.outType, "f32");
    assert.equal(r.architecture, "llama");
  });

  it("is read back by our reader with the expected metadata", () => {
    const f = readGguf(gguf);
    assert.equal(f.tensors.length, 47); // tied: no output.weight
    assert.ok(!f.tensors.some((t) => t.name === "output.weight"));
    assert.equal(metaString(f, "general.architecture"), "llama");
    assert.equal(metaString(f, "tokenizer.ggml.model"), "llama");
    assert.equal((f.metadata.get("tokenizer.ggml.tokens") as string[]).length, 512);
    assert.equal(f.metadata.get("llama.context_length"), 512);
    assert.equal(f.metadata.get("tokenizer.ggml.bos_token_id"), 1);
    assert.equal(f.metadata.get("tokenizer.ggml.add_bos_token"), true);
    assert.match(metaString(f, "tokenizer.chat_template")!, /bos_token/);
  });

  it("greedy continuation and top-5 next-token probabilities match golden.json", async () => {
    const model = await loadGguf(gguf);
    try {
      const g = storiesGolden.greedy[1]!;
      const { ids, top } = await greedy(model, g.promptIdsWithBos, 128);
      assert.deepEqual(ids, g.ids);
      const want = storiesGolden.nextTokenTop5.top;
      assert.deepEqual(top.map((t) => t.id), want.map((t) => t.id));
      for (let i = 0; i < want.length; i++) assert.ok(Math.abs(top[i]!.p - want[i]!.p) < 1e-3, `p[${i}] ${top[i]!.p} vs ${want[i]!.p}`);
      assert.deepEqual((await greedy(model, [1], 200)).ids, storiesGolden.fromBos200.ids);
    } finally {
      await model.dispose();
    }
  });

  it("tokenizes like the original vocabulary (golden ids)", async () => {
    const model = await loadGguf(gguf);
    try {
      for (const c of storiesGolden.tokenization) assert.deepEqual(model.tokenize(c.text), c.ids, JSON.stringify(c.text));
    } finally {
      await model.dispose();
    }
  });

  it("q8_0 output still gives the golden greedy text", async () => {
    const q = out("stories-q8");
    await convertHfFolder(STORIES_HF, q, "q8_0");
    const f = readGguf(q);
    assert.equal(f.tensors.find((t) => t.name === "blk.0.attn_q.weight")!.typeName, "Q8_0");
    assert.equal(f.tensors.find((t) => t.name === "blk.0.attn_norm.weight")!.typeName, "F32");
    // Quantization may legitimately flip a late near-tie; the first 30 tokens (golden's short run) must hold.
    await assertStoriesGolden(q, 30);
  });

  it("f16 and q4_0 outputs load and stay close (q4_0: first 6 tokens)", async () => {
    const h = out("stories-f16");
    await convertHfFolder(STORIES_HF, h, "f16");
    await assertStoriesGolden(h, 30);
    const q4 = out("stories-q4");
    await convertHfFolder(STORIES_HF, q4, "q4_0");
    assert.equal(readGguf(q4).tensors.find((t) => t.name === "blk.0.ffn_up.weight")!.typeName, "Q4_0");
    const model = await loadGguf(q4);
    try {
      const { ids } = await greedy(model, storiesGolden.greedy[0]!.promptIdsWithBos, 6);
      assert.deepEqual(ids, storiesGolden.greedy[0]!.ids.slice(0, 6));
    } finally {
      await model.dispose();
    }
  });
});

describe("tiny-qwen2 (byte-level BPE, BF16, q/k/v biases) → GGUF", () => {
  let gguf: string;
  before(async () => {
    gguf = out("qwen");
    const r = await convertHfFolder(QWEN_HF, gguf);
    assert.equal(r.outType, "bf16");
  });

  it("writes the gpt2 tokenizer with the qwen2 pre-tokenizer and ChatML template", () => {
    const f = readGguf(gguf);
    assert.equal(metaString(f, "tokenizer.ggml.model"), "gpt2");
    assert.equal(metaString(f, "tokenizer.ggml.pre"), "qwen2");
    assert.equal((f.metadata.get("tokenizer.ggml.merges") as string[]).length, 1241);
    assert.equal(f.metadata.get("tokenizer.ggml.eos_token_id"), 1499);
    assert.equal(f.metadata.get("tokenizer.ggml.add_bos_token"), false);
    const types = f.metadata.get("tokenizer.ggml.token_type") as number[];
    assert.deepEqual(types.slice(1497), [3, 3, 3]);
    assert.match(metaString(f, "tokenizer.chat_template")!, /<\|im_start\|>/);
    assert.equal(f.tensors.find((t) => t.name === "blk.0.attn_q.bias")!.typeName, "F32");
    assert.equal(f.tensors.find((t) => t.name === "blk.0.attn_q.weight")!.typeName, "BF16");
  });

  it("tokenizes the golden cases like the reference tokenizer", async () => {
    const model = await loadGguf(gguf);
    try {
      for (const c of qwenGolden.tokenization as { text: string; ids: number[]; note?: string }[]) {
        if (c.text.normalize("NFC") !== c.text) continue; // HF NFC-normalizes, llama.cpp does not (README)
        assert.deepEqual(model.tokenize(c.text, c.note !== undefined), c.ids, JSON.stringify(c.text));
      }
    } finally {
      await model.dispose();
    }
  });

  it("greedy continuations of all four golden prompts match the float64 reference", async () => {
    const model = await loadGguf(gguf);
    try {
      for (const g of qwenGolden.greedy as { prompt: string; promptIds: number[]; ids: number[]; top5FirstSteps: { id: number; p: number }[][] }[]) {
        const { ids, top } = await greedy(model, g.promptIds, 32);
        assert.deepEqual(ids, g.ids, g.prompt);
        assert.deepEqual(top.map((t) => t.id), g.top5FirstSteps[0]!.map((t) => t.id), g.prompt);
      }
      const chat = qwenGolden.chat;
      assert.deepEqual((await greedy(model, chat.renderedIds, 32)).ids, chat.first32.ids);
    } finally {
      await model.dispose();
    }
  });

  it("a byte-level BPE tokenizer that declares BOS only in its post-processor (Llama 3 style) prepends it, as HF's tokenizer does", async () => {
    // Llama-3-style folders: no add_bos_token key; tokenizer.json's post_processor is a Sequence of
    // ByteLevel and a TemplateProcessing whose single template starts with the BOS special token.
    const dir = copyHfFolder(QWEN_HF, join(tmp.path, "qwen-post-processor-bos"));
    const tcPath = join(dir, "tokenizer_config.json");
    const tc = JSON.parse(readFileSync(tcPath, "utf8"));
    delete tc.add_bos_token;
    delete tc.bos_token;
    writeFileSync(tcPath, JSON.stringify(tc));
    const tjPath = join(dir, "tokenizer.json");
    const tj = JSON.parse(readFileSync(tjPath, "utf8"));
    const bosText = "<|endoftext|>";
    const bosId = (tj.added_tokens as { id: number; content: string }[]).find((a) => a.content === bosText)!.id;
    tj.post_processor = {
      type: "Sequence",
      processors: [
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
        { type: "TemplateProcessing", single: [{ SpecialToken: { id: bosText, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }], pair: [], special_tokens: { [bosText]: { id: bosText, ids: [bosId], tokens: [bosText] } } },
      ],
    };
    writeFileSync(tjPath, JSON.stringify(tj));
    const gguf = out("qwen-post-processor-bos");
    await convertHfFolder(dir, gguf);
    const f = readGguf(gguf);
    assert.equal(f.metadata.get("tokenizer.ggml.add_bos_token"), true);
    assert.equal(f.metadata.get("tokenizer.ggml.add_eos_token"), false);
    const model = await loadGguf(gguf);
    try {
      // HF's tokenizer applies the template: [BOS] + the text's ids. llama.cpp prepends BOS when the
      // GGUF says so (Shimmy's prompts do: LoadedModel.tokenizePrompt), and the text's ids are the reference's.
      const c = (qwenGolden.tokenization as { text: string; ids: number[]; note?: string }[]).find((t) => t.note === undefined && t.text.normalize("NFC") === t.text)!;
      assert.equal(model.tokens.bos, bosId);
      assert.equal(model.tokens.shouldPrependBosToken, true);
      assert.deepEqual(model.tokenize(c.text), c.ids);
    } finally {
      await model.dispose();
    }
    // The explicit key still wins over the post-processor.
    writeFileSync(tcPath, JSON.stringify({ ...tc, add_bos_token: false }));
    const explicit = out("qwen-post-processor-explicit");
    await convertHfFolder(dir, explicit);
    assert.equal(readGguf(explicit).metadata.get("tokenizer.ggml.add_bos_token"), false);
  });

  it("q8_0 output keeps the greedy text of the golden prompts", async () => {
    const q = out("qwen-q8");
    await convertHfFolder(QWEN_HF, q, "q8_0");
    const model = await loadGguf(q);
    try {
      for (const g of qwenGolden.greedy as { promptIds: number[]; ids: number[] }[]) {
        assert.deepEqual((await greedy(model, g.promptIds, 16)).ids, g.ids.slice(0, 16));
      }
    } finally {
      await model.dispose();
    }
  });
});

describe("other layouts and families", () => {
  it("MistralForCausalLM uses the llama path", async () => {
    const dir = copyHfFolder(STORIES_HF, join(tmp.path, "mistral"), { config: { architectures: ["MistralForCausalLM"], model_type: "mistral" } });
    const g = out("mistral");
    await convertHfFolder(dir, g);
    await assertStoriesGolden(g, 30);
  });

  it("an untied lm_head becomes output.weight", async () => {
    const dir = copyHfFolder(STORIES_HF, join(tmp.path, "untied"), {
      config: { tie_word_embeddings: false },
      tensors: (ts) => [...ts, { ...ts.find((t) => t.name === "model.embed_tokens.weight")!, name: "lm_head.weight" }],
    });
    const g = out("untied");
    await convertHfFolder(dir, g);
    assert.ok(readGguf(g).tensors.some((t) => t.name === "output.weight"));
    await assertStoriesGolden(g, 30);
  });

  it("sharded checkpoints (index.json) convert to the same model", async () => {
    const dir = copyHfFolder(STORIES_HF, join(tmp.path, "sharded"), { shards: 3 });
    const g = out("sharded");
    await convertHfFolder(dir, g);
    await assertStoriesGolden(g, 30);
  });

  it("llama3 rope scaling writes rope_freqs with llama.cpp's factors", async () => {
    // With original context 65536 every wavelength of this head size is "high frequency": factors 1.
    const dir = copyHfFolder(STORIES_HF, join(tmp.path, "llama3rope"), {
      config: { rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 65536 } },
    });
    const g = out("llama3rope");
    await convertHfFolder(dir, g);
    const t = readGguf(g).tensors.find((x) => x.name === "rope_freqs.weight")!;
    assert.deepEqual(t.dims, [4]);
    await assertStoriesGolden(g, 30);
    // The formula itself (head_dim 8, θ 10000, original 8192): wavelengths 2π·{1,10,100,1000}.
    const factors = llama3RopeFactors(parseHfConfig(join(dir, "config.json")) && { ...parseHfConfig(join(dir, "config.json")), ropeScaling: { factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } }, 8);
    const smooth = (8192 / (2 * Math.PI * 1000) - 1) / 3;
    assert.deepEqual([...factors].map((f) => Math.fround(f)), [1, 1, 1, Math.fround(1 / ((1 - smooth) / 8 + smooth))]);
  });

  it("Phi-3 (fused qkv and gate_up) built from the stories weights generates the same text", async () => {
    // (Not named "phi3": llama.cpp keys Phi-3 vocabulary tweaks on general.name.)
    const dir = copyHfFolder(STORIES_HF, join(tmp.path, "fused-stories"), {
      config: { architectures: ["Phi3ForCausalLM"], model_type: "phi3", tie_word_embeddings: false, rope_scaling: null },
      tensors: (ts) => {
        const get = (name: string) => ts.find((t) => t.name === name)!;
        const out = ts.filter((t) => !/(q_proj|k_proj|v_proj|gate_proj|up_proj)\.weight$/.test(t.name));
        for (let i = 0; i < 5; i++) {
          const p = `model.layers.${i}`;
          // HF q/k are rotate-half (NeoX) layout, which is what llama.cpp's phi3 expects.
          const qkv = [get(`${p}.self_attn.q_proj.weight`), get(`${p}.self_attn.k_proj.weight`), get(`${p}.self_attn.v_proj.weight`)];
          out.push({ name: `${p}.self_attn.qkv_proj.weight`, dtype: "F32", shape: [64 + 32 + 32, 64], data: Buffer.concat(qkv.map((t) => t.data)) });
          const gu = [get(`${p}.mlp.gate_proj.weight`), get(`${p}.mlp.up_proj.weight`)];
          out.push({ name: `${p}.mlp.gate_up_proj.weight`, dtype: "F32", shape: [2 * 172, 64], data: Buffer.concat(gu.map((t) => t.data)) });
        }
        out.push({ ...get("model.embed_tokens.weight"), name: "lm_head.weight" });
        return out;
      },
    });
    const g = out("phi3");
    await convertHfFolder(dir, g);
    assert.equal(metaString(readGguf(g), "general.architecture"), "phi3");
    await assertStoriesGolden(g, 30);
  });

  it("Qwen3 (q/k norms, explicit head_dim) converts to a model llama.cpp loads and runs", async () => {
    const cfg = { architectures: ["Qwen3ForCausalLM"], model_type: "qwen3", hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 32, vocab_size: 1500, max_position_embeddings: 512, rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: true, torch_dtype: "float32" };
    let seed = 1;
    const tensors = [randomTensor("model.embed_tokens.weight", [1500, 64], seed++), randomTensor("model.norm.weight", [64], seed++, 1)];
    for (let i = 0; i < 2; i++) {
      const p = `model.layers.${i}`;
      tensors.push(
        randomTensor(`${p}.self_attn.q_proj.weight`, [128, 64], seed++), randomTensor(`${p}.self_attn.k_proj.weight`, [64, 64], seed++),
        randomTensor(`${p}.self_attn.v_proj.weight`, [64, 64], seed++), randomTensor(`${p}.self_attn.o_proj.weight`, [64, 128], seed++),
        randomTensor(`${p}.self_attn.q_norm.weight`, [32], seed++, 1), randomTensor(`${p}.self_attn.k_norm.weight`, [32], seed++, 1),
        randomTensor(`${p}.mlp.gate_proj.weight`, [96, 64], seed++), randomTensor(`${p}.mlp.up_proj.weight`, [96, 64], seed++),
        randomTensor(`${p}.mlp.down_proj.weight`, [64, 96], seed++), randomTensor(`${p}.input_layernorm.weight`, [64], seed++, 1),
        randomTensor(`${p}.post_attention_layernorm.weight`, [64], seed++, 1),
      );
    }
    const dir = copyHfFolder(QWEN_HF, join(tmp.path, "qwen3"), { config: cfg, tensors: () => tensors });
    const g = out("qwen3");
    await convertHfFolder(dir, g);
    const f = readGguf(g);
    assert.equal(f.metadata.get("qwen3.attention.key_length"), 32);
    assert.ok(f.tensors.some((t) => t.name === "blk.1.attn_k_norm.weight"));
    const model = await loadGguf(g);
    try {
      const { ids } = await greedy(model, qwenGolden.greedy[0].promptIds, 8);
      assert.equal(ids.length, 8);
      assert.ok(ids.every((id) => id >= 0 && id < 1500));
    } finally {
      await model.dispose();
    }
  });
});

describe("bad input: clear errors naming the file or tensor, nothing left in the cache", () => {
  const cacheRoot = join(tmp.path, "cache-bad");
  const cache = new ConversionCache(cacheRoot);
  const expectFailure = async (dir: string, pattern: RegExp): Promise<void> => {
    await assert.rejects(cache.ensure(dir), (e: Error) => {
      assert.match(e.message, pattern);
      return true;
    });
    const left = existsSync(cache.dir) ? readdirSync(cache.dir) : [];
    assert.deepEqual(left, [], "nothing is left in the cache");
  };

  it("missing or broken config.json", async () => {
    const dir = copyHfFolder(STORIES_HF, join(tmp.path, "noconfig"));
    rmSync(join(dir, "config.json"));
    await expectFailure(dir, /noconfig\/config\.json: missing config\.json/);
    writeFileSync(join(dir, "config.json"), "{");
    await expectFailure(dir, /noconfig\/config\.json: invalid JSON/);
  });

  it("unknown architecture names it and lists the supported ones", async () => {
    const dir = copyHfFolder(STORIES_HF, join(tmp.path, "unknownarch"), { config: { architectures: ["MambaForCausalLM"] } });
    await expectFailure(dir, /architecture "MambaForCausalLM" is not supported; supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Phi3ForCausalLM/);
  });

  it("a tensor whose shape contradicts config.json", async () => {
    const dir = copyHfFolder(STORIES_HF, join(tmp.path, "badshape"), { config: { intermediate_size: 100 } });
    await expectFailure(dir, /tensor "model\.layers\.0\.mlp\.gate_proj\.weight" has shape \[172,64\], config\.json implies \[100,64\]/);
  });

  it("a missing tensor", async () => {
    const dir = copyHfFolder(STORIES_HF, join(tmp.path, "missing"), { tensors: (ts) => ts.filter((t) => t.name !== "model.layers.3.self_attn.v_proj.weight") });
    await expectFailure(dir, /tensor "model\.layers\.3\.self_attn\.v_proj\.weight" is missing/);
  });

  it("an unexpected tensor is not silently dropped", async () => {
    const dir = copyHfFolder(STORIES_HF, join(tmp.path, "extra"), { tensors: (ts) => [...ts, { name: "vision_tower.patch.weight", dtype: "F32", shape: [2], data: f32Data(new Float32Array(2)) }] });
    await expectFailure(dir, /unexpected tensor "vision_tower\.patch\.weight"/);
  });

  it("a truncated safetensors file", async () => {
    const dir = copyHfFolder(STORIES_HF, join(tmp.path, "truncated"));
    truncateSync(join(dir, "model.safetensors"), statSync(join(dir, "model.safetensors")).size - 100);
    await expectFailure(dir, /model\.safetensors: truncated: tensor/);
  });

  it("mismatched shards", async () => {
    const dir = copyHfFolder(STORIES_HF, join(tmp.path, "badshards"), { shards: 2 });
    const indexPath = join(dir, "model.safetensors.index.json");
    const index = JSON.parse(readFileSync(indexPath, "utf8"));
    index.weight_map["model.norm.weight"] = index.weight_map["model.norm.weight"] === "model-00001-of-00002.safetensors" ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
    writeFileSync(indexPath, JSON.stringify(index));
    await expectFailure(dir, /tensor "model\.norm\.weight"/);
  });

  it("non-float weights", async () => {
    const dir = copyHfFolder(STORIES_HF, join(tmp.path, "int8"), {
      tensors: (ts) => ts.map((t) => (t.name === "model.norm.weight" ? { ...t, dtype: "I32" } : t)),
    });
    await expectFailure(dir, /tensor "model\.norm\.weight" has dtype I32/);
  });

  it("a tokenizer with an empty vocabulary", async () => {
    const dir = copyHfFolder(STORIES_HF, join(tmp.path, "emptyvocab"));
    const tokenizer = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"));
    tokenizer.model.vocab = {};
    tokenizer.model.merges = [];
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tokenizer));
    await expectFailure(dir, /emptyvocab\/tokenizer\.json: the tokenizer's vocabulary is empty/);
  });

  it("head counts that do not split hidden_size, even where the tensor shapes still match", async () => {
    // 12 heads of 64/12 dims: q/o projections stay [64,64], so only the config check can catch it.
    const fractional = copyHfFolder(STORIES_HF, join(tmp.path, "fractionalheads"), { config: { num_attention_heads: 12, num_key_value_heads: 12, head_dim: undefined } });
    await expectFailure(fractional, /hidden_size 64 is not divisible by num_attention_heads 12/);
    const kv = copyHfFolder(STORIES_HF, join(tmp.path, "kvheads"), { config: { num_key_value_heads: 3 } });
    await expectFailure(kv, /num_attention_heads 8 is not a multiple of num_key_value_heads 3/);
  });

  it("ConvertError carries the file", async () => {
    const dir = copyHfFolder(STORIES_HF, join(tmp.path, "arch2"), { config: { architectures: ["GPTNeoXForCausalLM"] } });
    await assert.rejects(convertHfFolder(dir, out("x")), (e: unknown) => e instanceof ConvertError && e.file === join(dir, "config.json"));
  });
});

describe("conversion cache", () => {
  it("converts once, serves the cached file after, and again when the source changes", async () => {
    const dir = copyHfFolder(STORIES_HF, join(tmp.path, "cached-src"));
    const cache = new ConversionCache(join(tmp.path, "cache"));
    let starts = 0;
    const onProgress = (p: { index: number }) => void (p.index === 1 && starts++);
    const [a, b] = await Promise.all([cache.ensure(dir, "auto", onProgress), cache.ensure(dir, "auto", onProgress)]);
    assert.equal(a, b);
    assert.equal(starts, 1, "two concurrent requests convert once");
    const mtime = statSync(a).mtimeMs;
    assert.equal(await cache.ensure(dir, "auto", onProgress), a);
    assert.equal(starts, 1);
    assert.equal(statSync(a).mtimeMs, mtime);
    assert.notEqual(cache.pathFor(dir, "q8_0"), a, "options are part of the key");
    // Touching a source file (new mtime) makes a new key: converted again.
    const later = new Date(Date.now() + 5000);
    utimesSync(join(dir, "config.json"), later, later);
    const c = await cache.ensure(dir, "auto", onProgress);
    assert.notEqual(c, a);
    assert.equal(starts, 2);
  });

  it("never serves a half-written temp file left by a crash", async () => {
    const dir = copyHfFolder(STORIES_HF, join(tmp.path, "crash-src"));
    const cache = new ConversionCache(join(tmp.path, "cache-crash"));
    const target = cache.pathFor(dir, "auto");
    mkdirSync(cache.dir, { recursive: true });
    writeFileSync(`${target}.tmp-99999-deadbeef`, "half a file");
    const got = await cache.ensure(dir);
    assert.equal(got, target);
    assert.equal(readGguf(got).tensors.length, 47);
  });
});

describe("numeric encoders", () => {
  it("f16 encoding round-trips every half value (round to nearest even)", async () => {
    const { f16ToF32, f32ToF16 } = await import("../src/convert/half.js");
    for (let h = 0; h < 0x10000; h++) {
      const x = f16ToF32(h);
      if (!Number.isNaN(x)) assert.equal(f32ToF16(x), h);
    }
    assert.equal(f32ToF16(1 + 2 ** -11), 0x3c00, "tie rounds to even (down)");
    assert.equal(f32ToF16(1 + 3 * 2 ** -11), 0x3c02, "tie rounds to even (up)");
    assert.equal(f32ToF16(70000), 0x7c00);
  });

  it("Q8_0 and Q4_0 blocks follow ggml's reference quantizers", async () => {
    const { encodeQ8_0, encodeQ4_0 } = await import("../src/convert/quantize.js");
    const x = new Float32Array(32).map((_, i) => i - 15.5); // -15.5 … 15.5
    const q8 = encodeQ8_0(x);
    assert.equal(q8.length, 34);
    // d = 15.5/127 as f16; q = roundf(x · 127/15.5), halves away from zero: ±127 at the ends.
    assert.equal(q8.readInt8(2), -127);
    assert.equal(q8.readInt8(2 + 31), 127);
    const d = Math.fround(15.5 / 127);
    const id = Math.fround(1 / d);
    for (let j = 0; j < 32; j++) {
      const v = Math.fround(x[j]! * id);
      assert.equal(q8.readInt8(2 + j), v < 0 ? -Math.round(-v) : Math.round(v), `q8[${j}]`);
    }
    const q4 = encodeQ4_0(x);
    assert.equal(q4.length, 18);
    // max-magnitude value is -15.5 (first to reach it), d = -15.5 / -8 = 1.9375 (exact in f16: 0x3fc0).
    assert.equal(q4.readUInt16LE(0), 0x3fc0);
    assert.equal(q4[2]! & 0x0f, 0); // x[0] = -15.5 → -15.5/1.9375 + 8.5 = 0.5 → 0
    assert.equal(q4[2 + 15]! >> 4, 15); // x[31] = 15.5 → 16.5 → min(15, 16) = 15
    assert.ok(encodeQ8_0(new Float32Array(32)).subarray(2).every((b) => b === 0), "all-zero block");
  });

  it("BF16 weights decode exactly", async () => {
    const { decodeToF32 } = await import("../src/convert/half.js");
    const b = Buffer.from([0x80, 0x3f, 0x00, 0xc0]); // 1.0, -2.0
    assert.deepEqual([...decodeToF32(b, "BF16")], [1, -2]);
    assert.deepEqual([...asF32({ name: "x", dtype: "F32", shape: [1], data: f32Data(new Float32Array([3])) })], [3]);
  });
});
