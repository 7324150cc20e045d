import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { FormatError } from "../src/formats/errors.js";
import { readHfFolder, readHfTokenizerSummary } from "../src/formats/hf-folder.js";
import { readSafetensors, readSafetensorsData, readSafetensorsModel } from "../src/formats/safetensors.js";
import { writeSafetensors } from "../src/formats/safetensors-writer.js";
import { summarizeHfFolder } from "../src/formats/summary.js";
import { QWEN_HF, STORIES_HF, tempDir } from "./helpers/paths.js";

const tmp = tempDir();
after(() => tmp.cleanup());

function expectFormatError(fn: () => unknown, file: string, pattern: RegExp): FormatError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof FormatError, `expected FormatError, got ${String(e)}`);
    assert.equal(e.file, file);
    assert.match(e.message, pattern);
    return e;
  }
  assert.fail("no error was raised");
}

describe("SafeTensors reader on the real HF folders", () => {
  it("reads stories260K/hf: 47 F32 tensors, 260,032 parameters, tied embeddings", () => {
    const f = readSafetensors(join(STORIES_HF, "model.safetensors"));
    assert.equal(f.tensors.length, 47);
    assert.ok(f.tensors.every((t) => t.dtype === "F32"));
    const params = f.tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    assert.equal(params, 260032);
    assert.ok(!f.tensors.some((t) => t.name === "lm_head.weight"));
    const embed = f.tensors.find((t) => t.name === "model.embed_tokens.weight")!;
    assert.deepEqual(embed.shape, [512, 64]);
    const data = readSafetensorsData(embed);
    assert.equal(data.length, 512 * 64 * 4);
  });

  it("summarises both HF folders from config.json and tensor headers", () => {
    const llama = summarizeHfFolder(STORIES_HF);
    assert.equal(llama.architecture, "LlamaForCausalLM");
    assert.equal(llama.parameters, 260032);
    assert.equal(llama.quantization, "F32");
    assert.equal(llama.contextLength, 512);
    assert.equal(llama.vocabSize, 512);
    assert.equal(llama.hasChatTemplate, true);
    assert.equal(llama.kind, "generative");

    const qwen = summarizeHfFolder(QWEN_HF);
    assert.equal(qwen.architecture, "Qwen2ForCausalLM");
    assert.equal(qwen.quantization, "BF16");
    assert.equal(qwen.contextLength, 1024);
    assert.equal(qwen.vocabSize, 1500);
    assert.equal(qwen.layers, 4);
    assert.equal(qwen.hasChatTemplate, true);
  });

  it("parses config, tokenizer_config and the tokenizer kind", () => {
    const folder = readHfFolder(QWEN_HF);
    assert.equal(folder.config.modelType, "qwen2");
    assert.equal(folder.config.tieWordEmbeddings, true);
    assert.equal(folder.config.numKvHeads, 2);
    assert.equal(folder.config.torchDtype, "bfloat16");
    assert.match(folder.tokenizerConfig!.chatTemplate!, /<\|im_start\|>/);
    assert.equal(folder.generationConfig?.eos_token_id !== undefined, true);
    assert.equal(readHfTokenizerSummary(QWEN_HF)?.kind, "gpt2");
    assert.equal(readHfTokenizerSummary(STORIES_HF)?.kind, "llama");
    assert.equal(readHfTokenizerSummary(STORIES_HF)?.vocabSize, 512);
  });

  it("reads sharded checkpoints through model.safetensors.index.json", () => {
    const dir = join(tmp.path, "sharded");
    mkdirSync(dir);
    const src = readSafetensors(join(STORIES_HF, "model.safetensors"));
    const half = Math.ceil(src.tensors.length / 2);
    const shards = [src.tensors.slice(0, half), src.tensors.slice(half)];
    const weightMap: Record<string, string> = {};
    shards.forEach((list, i) => {
      const name = `model-0000${i + 1}-of-00002.safetensors`;
      writeSafetensors(join(dir, name), list.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: readSafetensorsData(t) })));
      for (const t of list) weightMap[t.name] = name;
    });
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const model = readSafetensorsModel(dir);
    assert.equal(model.files.length, 2);
    assert.equal(model.tensors.size, 47);
    const t = model.tensors.get("model.norm.weight")!;
    assert.deepEqual(readSafetensorsData(t), readSafetensorsData(src.tensors.find((x) => x.name === "model.norm.weight")!));

    // A tensor the index places in the wrong shard is reported by name.
    const moved = shards[0]![0]!.name;
    const wrong = { ...weightMap, [moved]: "model-00002-of-00002.safetensors" };
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: wrong }));
    assert.throws(() => readSafetensorsModel(dir), new RegExp(`tensor "${moved.replaceAll(".", "\\.")}"`));
    // A missing shard is named.
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: { ...weightMap, extra: "model-00003-of-00003.safetensors" } }));
    assert.throws(() => readSafetensorsModel(dir), /model-00003-of-00003\.safetensors listed in the index is missing/);
  });
});

describe("SafeTensors reader on corrupt files", () => {
  const original = readFileSync(join(STORIES_HF, "model.safetensors"));
  const headerLen = Number(original.readBigUInt64LE(0));
  const variant = (name: string, bytes: Buffer): string => {
    const path = join(tmp.path, name);
    writeFileSync(path, bytes);
    return path;
  };
  const withHeader = (name: string, header: unknown, data: Buffer): string => {
    const json = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    return variant(name, Buffer.concat([len, json, data]));
  };

  it("refuses files too short to have a header", () => {
    const p = variant("tiny.safetensors", Buffer.from([1, 2, 3]));
    expectFormatError(() => readSafetensors(p), p, /too small/);
  });

  it("refuses a header length that lies", () => {
    const b = Buffer.from(original);
    b.writeBigUInt64LE(2n ** 40n, 0);
    const p = variant("lying-len.safetensors", b);
    assert.equal(expectFormatError(() => readSafetensors(p), p, /header length .* is impossible/).offset, 0);
  });

  it("refuses a header that is not JSON", () => {
    const b = Buffer.from(original);
    b.write("!!", 8);
    const p = variant("bad-json.safetensors", b);
    assert.equal(expectFormatError(() => readSafetensors(p), p, /invalid JSON in header/).offset, 8);
  });

  it("refuses truncated data, naming the tensor", () => {
    const p = variant("truncated.safetensors", original.subarray(0, original.length - 64));
    expectFormatError(() => readSafetensors(p), p, /truncated: tensor "[^"]+"/);
    const p2 = variant("truncated-header.safetensors", original.subarray(0, 8 + headerLen - 5));
    expectFormatError(() => readSafetensors(p2), p2, /truncated/);
  });

  it("refuses sizes that do not match dtype × shape, unknown dtypes, gaps and trailing bytes", () => {
    const data = Buffer.alloc(32);
    const size = withHeader("size.safetensors", { a: { dtype: "F32", shape: [4, 4], data_offsets: [0, 32] } }, data);
    expectFormatError(() => readSafetensors(size), size, /tensor "a" occupies 32 bytes but F32\[4,4\] needs 64/);
    const dtype = withHeader("dtype.safetensors", { a: { dtype: "Q9", shape: [8], data_offsets: [0, 32] } }, data);
    expectFormatError(() => readSafetensors(dtype), dtype, /unknown dtype "Q9"/);
    const gap = withHeader("gap.safetensors", { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [2], data_offsets: [16, 24] } }, data.subarray(0, 24));
    expectFormatError(() => readSafetensors(gap), gap, /tensor "b" data is not contiguous/);
    const trailing = withHeader("trailing.safetensors", { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }, data);
    expectFormatError(() => readSafetensors(trailing), trailing, /24 trailing bytes/);
    const shape = withHeader("shape.safetensors", { a: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, data.subarray(0, 4));
    expectFormatError(() => readSafetensors(shape), shape, /invalid shape/);
  });

  it("reads __metadata__", () => {
    const p = join(tmp.path, "meta.safetensors");
    writeSafetensors(p, [{ name: "x", dtype: "F16", shape: [2], data: Buffer.alloc(4) }], { format: "pt" });
    const f = readSafetensors(p);
    assert.deepEqual(f.metadata, { format: "pt" });
    assert.equal(f.tensors[0]!.dtype, "F16");
  });

  it("reports a broken config.json by file name", () => {
    const dir = join(tmp.path, "badcfg");
    mkdirSync(dir);
    copyFileSync(join(STORIES_HF, "model.safetensors"), join(dir, "model.safetensors"));
    writeFileSync(join(dir, "config.json"), "{ nope");
    expectFormatError(() => readHfFolder(dir), join(dir, "config.json"), /invalid JSON/);
  });
});
