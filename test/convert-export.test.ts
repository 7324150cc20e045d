import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { LlamaModel } from "node-llama-cpp";
import { convertHfFolder, type RequestedType } from "../src/convert/convert.js";
import { ConvertError } from "../src/convert/errors.js";
import { blockLayout, type DequantizableType } from "../src/convert/export/dequantize.js";
import { exportGguf, type ExportType } from "../src/convert/export/export.js";
import { f32ToF16 } from "../src/convert/half.js";
import { GGML_TYPE } from "../src/formats/ggml-types.js";
import { readGguf } from "../src/formats/gguf.js";
import { readSafetensorsData, readSafetensorsModel } from "../src/formats/safetensors.js";
import { runCli } from "./helpers/cli.js";
import { u32 } from "./helpers/gguf-fixtures.js";
import { rewriteGguf } from "./helpers/gguf-rewrite.js";
import { copyHfFolder, randomTensor } from "./helpers/hf-fixtures.js";
import { randomBytes } from "./helpers/random-bytes.js";
import { greedy, loadGguf } from "./helpers/llama-run.js";
import { MODELS_DIR, QWEN_HF, STORIES_GGUF, STORIES_HF, tempDir } from "./helpers/paths.js";
import { golden as storiesGolden } from "./helpers/server.js";

const qwenGolden = JSON.parse(readFileSync(join(MODELS_DIR, "tiny-qwen2", "golden.json"), "utf8")) as { greedy: { promptIds: number[]; ids: number[] }[] };
const tmp = tempDir("shimmy-export-");
after(() => tmp.cleanup());
let n = 0;
const path = (label: string): string => join(tmp.path, `${label}-${++n}`);

/** HF → GGUF on the calling thread (the test models are tiny). */
async function toGguf(dir: string, type: RequestedType = "auto"): Promise<string> {
  const out = `${path("gguf")}.gguf`;
  await convertHfFolder(dir, out, type, undefined, { workers: 0 });
  return out;
}

function toHf(gguf: string, type: ExportType = "auto", maxShardBytes?: number): string {
  const dir = path("hf");
  exportGguf(gguf, dir, { type, maxShardBytes });
  return dir;
}

const json = (file: string): Record<string, unknown> => JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;

/** Every tensor's bytes, by name. */
function tensorBytes(dir: string): Map<string, Buffer> {
  return new Map([...readSafetensorsModel(dir).tensors.values()].map((t) => [t.name, readSafetensorsData(t)]));
}

function ggufTensorData(file: string): Map<string, { type: number; data: Buffer }> {
  const f = readGguf(file);
  const bytes = readFileSync(file);
  return new Map(f.tensors.map((t) => [t.name, { type: t.type, data: bytes.subarray(f.dataOffset + t.offset, f.dataOffset + t.offset + t.bytes) }]));
}

async function withModel<T>(gguf: string, use: (m: LlamaModel) => Promise<T>): Promise<T> {
  const model = await loadGguf(gguf);
  try {
    return await use(model);
  } finally {
    await model.dispose();
  }
}

const CASES = [
  {
    label: "stories260K (SentencePiece-style llama, F32, q/k permuted)",
    hf: STORIES_HF,
    shard: undefined,
    texts: ["Once upon a time", "Hello world", "  two  spaces\nand a newline", "naïve café 😀 日本語 Straße", "<s>Lily</s> said <unk>"],
    prompt: storiesGolden.greedy[1]!.promptIdsWithBos,
  },
  {
    label: "tiny-qwen2 (byte-level BPE, BF16, q/k/v biases; sharded export)",
    hf: QWEN_HF,
    shard: 600_000,
    texts: ["Once upon a time", "Lily said, \"Let's play!\"", "numbers 12345 and 3.14", "naïve café 😀 日本語 Straße", "<|im_start|>user\nHi<|im_end|>\n<|endoftext|>", "tabs\tand\nnewlines\r\n"],
    prompt: qwenGolden.greedy[0]!.promptIds,
  },
];

for (const c of CASES) {
  describe(`HF → GGUF → HF → GGUF: ${c.label}`, () => {
    let first: string;
    let exported: string;
    let second: string;
    before(async () => {
      first = await toGguf(c.hf);
      exported = toHf(first, "auto", c.shard);
      second = await toGguf(exported);
    });

    it("the exported folder holds the original tensors byte for byte, under the original names", () => {
      const original = tensorBytes(c.hf);
      const back = tensorBytes(exported);
      assert.deepEqual([...back.keys()].sort(), [...original.keys()].sort());
      for (const [name, data] of original) assert.ok(back.get(name)!.equals(data), name);
      if (c.shard) {
        const index = json(join(exported, "model.safetensors.index.json")) as { weight_map: Record<string, string> };
        assert.ok(new Set(Object.values(index.weight_map)).size > 1, "the weights are split into shards");
      } else {
        assert.ok(existsSync(join(exported, "model.safetensors")));
      }
    });

    it("converts back to the same GGUF: metadata and tensor data byte-identical", () => {
      assert.ok(readFileSync(second).equals(readFileSync(first)));
    });

    it("tokenizer.json and tokenizer_config.json carry the original vocabulary, merges, specials and chat template", () => {
      const tj = json(join(exported, "tokenizer.json"));
      const original = json(join(c.hf, "tokenizer.json"));
      assert.deepEqual(tj, original);
      const tc = json(join(exported, "tokenizer_config.json"));
      const otc = json(join(c.hf, "tokenizer_config.json"));
      for (const key of ["add_bos_token", "add_eos_token", "bos_token", "eos_token", "unk_token", "pad_token", "chat_template"]) assert.deepEqual(tc[key], otc[key] ?? (key.startsWith("add_") ? false : null), key);
      const decoder = (d: unknown) => Object.fromEntries(Object.entries(d as Record<string, { content: string; special: boolean }>).map(([id, t]) => [id, [t.content, t.special]]));
      assert.deepEqual(decoder(tc.added_tokens_decoder), decoder(otc.added_tokens_decoder));
      const config = json(join(exported, "config.json"));
      const oc = json(join(c.hf, "config.json"));
      for (const key of ["architectures", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "vocab_size", "max_position_embeddings", "rms_norm_eps", "rope_theta", "tie_word_embeddings", "torch_dtype"]) assert.deepEqual(config[key], oc[key], key);
      assert.deepEqual(json(join(exported, "generation_config.json")).eos_token_id, (config.eos_token_id as number | null) ?? undefined);
    });

    it("tokenizes texts (unicode, special tokens) and generates greedily like the original", async () => {
      const run = (gguf: string) => withModel(gguf, async (m) => ({ ids: c.texts.map((t) => [...m.tokenize(t, true)]), greedy: (await greedy(m, c.prompt, 24)).ids }));
      const [a, b] = [await run(first), await run(second)];
      assert.deepEqual(b, a);
      assert.ok(a.ids.every((ids) => ids.length > 0));
    });
  });
}

describe("GGUF → HF for GGUFs the converter did not write, other layouts", () => {
  it("llama.cpp's stories260K.gguf exports to a folder that converts back to its tensors and golden text", async () => {
    const dir = toHf(STORIES_GGUF);
    const back = await toGguf(dir);
    const a = ggufTensorData(STORIES_GGUF);
    const b = ggufTensorData(back);
    assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
    for (const [name, t] of a) assert.ok(b.get(name)!.data.equals(t.data), name);
    const g = storiesGolden.greedy[1]!;
    await withModel(back, async (m) => assert.deepEqual((await greedy(m, g.promptIdsWithBos, 64)).ids, g.ids.slice(0, 64)));
  });

  it("Qwen3, an untied llama head with attention biases, and Llama 3 rope scaling round-trip to the same GGUF", async () => {
    let seed = 1;
    const qwen3: ReturnType<typeof randomTensor>[] = [randomTensor("model.embed_tokens.weight", [1500, 64], seed++), randomTensor("model.norm.weight", [64], seed++, 1)];
    for (let i = 0; i < 2; i++) {
      const p = `model.layers.${i}`;
      const shapes: [string, number[]][] = [
        ["self_attn.q_proj.weight", [128, 64]], ["self_attn.k_proj.weight", [64, 64]], ["self_attn.v_proj.weight", [64, 64]], ["self_attn.o_proj.weight", [64, 128]],
        ["self_attn.q_norm.weight", [32]], ["self_attn.k_norm.weight", [32]], ["mlp.gate_proj.weight", [96, 64]], ["mlp.up_proj.weight", [96, 64]],
        ["mlp.down_proj.weight", [64, 96]], ["input_layernorm.weight", [64]], ["post_attention_layernorm.weight", [64]],
      ];
      for (const [name, shape] of shapes) qwen3.push(randomTensor(`${p}.${name}`, shape, seed++));
    }
    const folders = [
      copyHfFolder(QWEN_HF, path("qwen3"), {
        config: { architectures: ["Qwen3ForCausalLM"], model_type: "qwen3", hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 32, rope_theta: 1000000, torch_dtype: "float32" },
        tensors: () => qwen3,
      }),
      copyHfFolder(STORIES_HF, path("llama-variant"), {
        config: { tie_word_embeddings: false, attention_bias: true, rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } },
        tensors: (ts) => [
          ...ts,
          { ...ts.find((t) => t.name === "model.embed_tokens.weight")!, name: "lm_head.weight" },
          ...Array.from({ length: 5 }, (_, i) => [randomTensor(`model.layers.${i}.self_attn.q_proj.bias`, [64], 100 + i), randomTensor(`model.layers.${i}.self_attn.k_proj.bias`, [32], 200 + i), randomTensor(`model.layers.${i}.self_attn.v_proj.bias`, [32], 300 + i)]).flat(),
        ],
      }),
    ];
    for (const dir of folders) {
      const first = await toGguf(dir);
      const exported = toHf(first);
      const original = tensorBytes(dir);
      for (const [name, data] of tensorBytes(exported)) assert.ok(data.equals(original.get(name)!), `${dir}: ${name}`);
      assert.ok(readFileSync(await toGguf(exported)).equals(readFileSync(first)), dir);
    }
    assert.ok(readGguf(await toGguf(folders[1]!)).tensors.some((t) => t.name === "rope_freqs.weight"));
  });

  it("--type f16 and bf16 write every tensor in that dtype", async () => {
    const first = await toGguf(STORIES_HF);
    for (const [type, dtype] of [["f16", "F16"], ["bf16", "BF16"]] as const) {
      const dir = toHf(first, type);
      const tensors = [...readSafetensorsModel(dir).tensors.values()];
      assert.ok(tensors.every((t) => t.dtype === dtype), type);
      assert.equal(json(join(dir, "config.json")).torch_dtype, type === "f16" ? "float16" : "bfloat16");
      await toGguf(dir);
    }
  });
});

describe("quantized GGUFs → F32", () => {
  for (const type of ["q8_0", "q4_0"] as const) {
    it(`${type}: dequantised values re-quantize to the same blocks (the whole GGUF byte-identical)`, async () => {
      const quantized = await toGguf(STORIES_HF, type);
      const dir = toHf(quantized);
      const dtypes = new Set([...readSafetensorsModel(dir).tensors.values()].map((t) => t.dtype));
      // Rows of 172 values are not whole 32-value blocks: the quantizer kept ffn_down F16, and so does the export.
      assert.deepEqual([...dtypes].sort(), ["F16", "F32"]);
      const again = await toGguf(dir, type);
      assert.ok(readFileSync(again).equals(readFileSync(quantized)));
    });
  }

  it("q8_0 exported to F32 generates the quantized model's greedy text", async () => {
    const quantized = await toGguf(STORIES_HF, "q8_0");
    const f32 = await toGguf(toHf(quantized, "f32"));
    assert.ok(readGguf(f32).tensors.every((t) => t.type === GGML_TYPE.F32));
    const g = storiesGolden.greedy[1]!;
    const [a, b] = [await withModel(quantized, async (m) => (await greedy(m, g.promptIdsWithBos, 64)).ids), await withModel(f32, async (m) => (await greedy(m, g.promptIdsWithBos, 64)).ids)];
    assert.deepEqual(b, a);
  });
});

describe("K-quant and legacy blocks against llama.cpp's own dequantisation", () => {
  // llama.cpp looks token embeddings up with get_rows, which dequantises the stored rows exactly;
  // with an untied F32 output head, a model whose only quantized tensor is token_embd computes
  // the same logits as its F32 export only if every dequantised value is llama.cpp's.
  const HALF_FIELDS: Record<string, [number, number[]]> = {
    Q4_1: [3, [0, 2]], Q5_0: [6, [0]], Q5_1: [7, [0, 2]], Q2_K: [10, [80, 82]], Q3_K: [11, [108]], Q4_K: [12, [0, 2]], Q5_K: [13, [0, 2]], Q6_K: [14, [208]],
  };
  let base: string;
  before(async () => {
    let seed = 7;
    const hidden = 256;
    const tensors = [randomTensor("model.embed_tokens.weight", [512, hidden], seed++), randomTensor("lm_head.weight", [512, hidden], seed++), randomTensor("model.norm.weight", [hidden], seed++, 1)];
    const shapes: [string, number[]][] = [
      ["self_attn.q_proj.weight", [hidden, hidden]], ["self_attn.k_proj.weight", [hidden, hidden]], ["self_attn.v_proj.weight", [hidden, hidden]], ["self_attn.o_proj.weight", [hidden, hidden]],
      ["mlp.gate_proj.weight", [512, hidden]], ["mlp.up_proj.weight", [512, hidden]], ["mlp.down_proj.weight", [hidden, 512]], ["input_layernorm.weight", [hidden]], ["post_attention_layernorm.weight", [hidden]],
    ];
    for (const [name, shape] of shapes) tensors.push(randomTensor(`model.layers.0.${name}`, shape, seed++, name.endsWith("norm.weight") ? 1 : 0.05));
    const dir = copyHfFolder(STORIES_HF, path("wide"), {
      config: { hidden_size: hidden, intermediate_size: 512, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 4, head_dim: 64, tie_word_embeddings: false },
      tensors: () => tensors,
    });
    base = await toGguf(dir);
  });

  for (const [name, [type, halves]] of Object.entries(HALF_FIELDS)) {
    it(`${name}: the F32 export gives llama.cpp's greedy tokens and next-token probabilities`, async () => {
      const quantized = `${path(name)}.gguf`;
      await rewriteGguf(base, quantized, (_meta, tensors) =>
        tensors.map((t) => {
          if (t.name !== "token_embd.weight") return t;
          const { blockSize, typeSize } = blockLayout(name as DequantizableType);
          const blocks = (t.dims[0]! * t.dims[1]!) / blockSize;
          const data = Buffer.from(randomBytes(blocks * typeSize, 3 + type));
          // Small scales keep the embeddings near the size of the random weights around them.
          for (let b = 0; b < blocks; b++) halves.forEach((o, k) => data.writeUInt16LE(f32ToF16(k === 0 ? 0.004 : 0.002), b * typeSize + o));
          return { ...t, type, data: () => data };
        }),
      );
      const f32 = await toGguf(toHf(quantized));
      const run = (g: string) => withModel(g, async (m) => greedy(m, storiesGolden.greedy[1]!.promptIdsWithBos, 12));
      const [a, b] = [await run(quantized), await run(f32)];
      assert.deepEqual(b.ids, a.ids);
      assert.deepEqual(b.top.map((t) => t.id), a.top.map((t) => t.id));
      b.top.forEach((t, i) => assert.ok(Math.abs(t.p - a.top[i]!.p) < 1e-6, `${t.p} vs ${a.top[i]!.p}`));
      assert.ok(a.top[0]!.p < 0.99, "the first step is not a certainty that any embedding would give");
    });
  }
});

describe("refusals", () => {
  const expectRefusal = (gguf: string, re: RegExp) => assert.throws(() => exportGguf(gguf, path("refused")), (e: unknown) => e instanceof ConvertError && re.test(e.message));

  it("names an architecture it cannot export, and the supported ones", async () => {
    const g = `${path("gemma")}.gguf`;
    await rewriteGguf(STORIES_GGUF, g, (meta) => void meta.set("general.architecture", { type: 8, value: "gemma2" }));
    expectRefusal(g, /architecture "gemma2" cannot be exported to SafeTensors \(supported: llama, qwen2, qwen3\)/);
    const moe = `${path("moe")}.gguf`;
    await rewriteGguf(STORIES_GGUF, moe, (meta) => void meta.set("llama.expert_count", u32(8)));
    expectRefusal(moe, /llama with experts \(expert_count 8\) is not supported for export/);
  });

  it("names a tensor type it cannot dequantise, and the supported ones", async () => {
    const g = `${path("iq")}.gguf`;
    await rewriteGguf(STORIES_GGUF, g, (_meta, tensors) => tensors.map((t) => (t.name === "output_norm.weight" ? { ...t, type: 20, data: () => Buffer.alloc(36) } : t)));
    expectRefusal(g, /tensor "output_norm.weight" is IQ4_NL, which cannot be exported \(supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K\)/);
  });

  it("names a tensor with no HF place and a pre-tokenizer it does not know", async () => {
    const extra = `${path("extra")}.gguf`;
    await rewriteGguf(STORIES_GGUF, extra, (_meta, tensors) => [...tensors, { name: "blk.0.attn_sinks.weight", dims: [8], type: 0, data: () => Buffer.alloc(32) }]);
    expectRefusal(extra, /tensor "blk\.0\.attn_sinks\.weight" has no Hugging Face counterpart in the LlamaForCausalLM layout/);
    const qwen = await toGguf(QWEN_HF);
    const pre = `${path("pre")}.gguf`;
    await rewriteGguf(qwen, pre, (meta) => void meta.set("tokenizer.ggml.pre", { type: 8, value: "deepseek-llm" }));
    expectRefusal(pre, /tokenizer\.ggml\.pre "deepseek-llm" is not supported for export/);
  });

  it("never writes into a folder that holds other files; a refusal leaves no files behind", async () => {
    const dir = path("busy");
    exportGguf(STORIES_GGUF, dir);
    assert.throws(() => exportGguf(STORIES_GGUF, dir), /is not empty; pass --force/);
    const g = `${path("badrope")}.gguf`;
    await rewriteGguf(STORIES_GGUF, g, (meta) => void meta.set("llama.rope.dimension_count", u32(4)));
    const out = path("partial");
    assert.throws(() => exportGguf(g, out), /rope\.dimension_count 4 rotates part of each head/);
    assert.ok(!existsSync(out) || readdirSync(out).length === 0);
  });

  it("--force keeps the folder's other files and refuses to leave an old weights file beside new shards", () => {
    const dir = path("forced");
    exportGguf(STORIES_GGUF, dir);
    writeFileSync(join(dir, "notes.txt"), "mine");
    const before = readdirSync(dir).sort();
    // Shards of 100 KB: model.safetensors would stay and be loaded in place of them.
    assert.throws(() => exportGguf(STORIES_GGUF, dir, { force: true, maxShardBytes: 100_000 }), /holds weight files this export would not replace \(model\.safetensors\)/);
    assert.deepEqual(readdirSync(dir).sort(), before);
    exportGguf(STORIES_GGUF, dir, { force: true });
    assert.equal(readFileSync(join(dir, "notes.txt"), "utf8"), "mine");
    assert.deepEqual(readdirSync(dir).sort(), before);
    assert.deepEqual(readdirSync(join(dir, "..")).filter((n) => n.includes(".export-")), [], "no staging folder left");
  });
});

describe("shimmy convert model.gguf --to safetensors", () => {
  it("writes the folder and reports it as JSON; mismatched flags are refused", async () => {
    const gguf = await toGguf(QWEN_HF);
    const dir = path("cli");
    const r = runCli(["convert", gguf, "--to", "safetensors", "-o", dir, "--shard-size", "600KB", "--json"]);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { ok: boolean; format: string; architecture: string; files: string[]; tensors: number; dtypes: Record<string, number> };
    assert.equal(out.ok, true);
    assert.equal(out.format, "safetensors");
    assert.equal(out.architecture, "qwen2");
    assert.ok(out.files.includes("model.safetensors.index.json") && out.files.includes("tokenizer.json"));
    for (const f of out.files) assert.ok(existsSync(join(dir, f)), f);
    assert.deepEqual(out.dtypes, { BF16: 50 });
    const bad = runCli(["convert", gguf, "--to", "safetensors", "-o", path("cli"), "--type", "q8_0", "--json"]);
    assert.equal(bad.status, 1);
    assert.match(JSON.parse(bad.stdout).error, /--type q8_0 cannot be written to SafeTensors/);
  });
});
