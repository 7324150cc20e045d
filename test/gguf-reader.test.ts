import assert from "node:assert/strict";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { FormatError } from "../src/formats/errors.js";
import { GgufSkippedArray, GgufValueType, metaNumber, metaString, readGguf } from "../src/formats/gguf.js";
import { type GgufWriteValue, writeGguf } from "../src/formats/gguf-writer.js";
import { summarizeGguf } from "../src/formats/summary.js";
import { f32Tensor } from "./helpers/gguf-fixtures.js";
import { STORIES_CHAT_GGUF, STORIES_GGUF, tempDir } from "./helpers/paths.js";

const tmp = tempDir();
after(() => tmp.cleanup());

function expectFormatError(path: string, pattern: RegExp): FormatError {
  try {
    readGguf(path);
  } catch (e) {
    assert.ok(e instanceof FormatError, `expected FormatError, got ${String(e)}`);
    assert.equal(e.file, path);
    assert.match(e.message, pattern);
    return e;
  }
  assert.fail(`${path} was read without error`);
}

describe("GGUF reader on the real stories260K files", () => {
  it("reads header, metadata and tensor table of stories260K.gguf", () => {
    const f = readGguf(STORIES_GGUF);
    assert.equal(f.version, 3);
    assert.equal(f.fileSize, 1185376);
    assert.equal(f.alignment, 32);
    assert.equal(f.dataOffset % 32, 0);
    assert.equal(metaString(f, "general.architecture"), "llama");
    assert.equal(metaNumber(f, "llama.context_length"), 2048);
    assert.equal(metaNumber(f, "llama.embedding_length"), 64);
    assert.equal(metaNumber(f, "llama.block_count"), 5);
    assert.equal(metaNumber(f, "llama.attention.head_count"), 8);
    assert.equal(metaNumber(f, "llama.attention.head_count_kv"), 4);
    assert.equal(metaString(f, "tokenizer.ggml.model"), "llama");
    const tokens = f.metadata.get("tokenizer.ggml.tokens") as string[];
    assert.equal(tokens.length, 512);
    assert.deepEqual(tokens.slice(0, 4), ["<unk>", "<s>", "</s>", "<0x00>"]);
    assert.equal(f.metadataTypes.get("tokenizer.ggml.tokens")?.arrayType, GgufValueType.STRING);
    assert.equal(f.tensors.length, 48);
    const embd = f.tensors.find((t) => t.name === "token_embd.weight")!;
    assert.deepEqual(embd.dims, [64, 512]);
    assert.equal(embd.typeName, "F32");
    assert.equal(embd.bytes, 64 * 512 * 4);
    // The last tensor's data ends inside the file.
    const end = Math.max(...f.tensors.map((t) => f.dataOffset + t.offset + t.bytes));
    assert.ok(end <= f.fileSize);
  });

  it("summarises both GGUFs from their contents", () => {
    const plain = summarizeGguf([readGguf(STORIES_GGUF)]);
    assert.equal(plain.kind, "generative");
    assert.equal(plain.architecture, "llama");
    assert.equal(plain.parameters, 292800); // output.weight duplicates token_embd (README)
    assert.equal(plain.quantization, "F32");
    assert.equal(plain.contextLength, 2048);
    assert.equal(plain.vocabSize, 512);
    assert.equal(plain.hasChatTemplate, false);
    const chat = summarizeGguf([readGguf(STORIES_CHAT_GGUF)]);
    assert.equal(chat.contextLength, 512);
    assert.equal(chat.hasChatTemplate, true);
    assert.equal(chat.displayName, "stories260K");
  });

  it("steps over long arrays when asked, keeping their length", () => {
    const f = readGguf(STORIES_GGUF, { maxArrayLength: 16 });
    const tokens = f.metadata.get("tokenizer.ggml.tokens");
    assert.ok(tokens instanceof GgufSkippedArray);
    assert.equal(tokens.length, 512);
    assert.equal(f.tensors.length, 48);
    assert.equal(f.dataOffset, readGguf(STORIES_GGUF).dataOffset);
  });
});

describe("GGUF writer round trip", () => {
  it("writes every metadata value type and reads them back", async () => {
    const path = join(tmp.path, "all-types.gguf");
    const meta = new Map<string, GgufWriteValue>([
      ["u8", { type: GgufValueType.UINT8, value: 250 }],
      ["i8", { type: GgufValueType.INT8, value: -5 }],
      ["u16", { type: GgufValueType.UINT16, value: 65000 }],
      ["i16", { type: GgufValueType.INT16, value: -32000 }],
      ["u32", { type: GgufValueType.UINT32, value: 4000000000 }],
      ["i32", { type: GgufValueType.INT32, value: -2000000000 }],
      ["f32", { type: GgufValueType.FLOAT32, value: 0.5 }],
      ["bool", { type: GgufValueType.BOOL, value: true }],
      ["string", { type: GgufValueType.STRING, value: "héllo ✓" }],
      ["u64", { type: GgufValueType.UINT64, value: 2n ** 60n }],
      ["i64", { type: GgufValueType.INT64, value: -42n }],
      ["f64", { type: GgufValueType.FLOAT64, value: 1e-300 }],
      ["strings", { type: GgufValueType.ARRAY, arrayType: GgufValueType.STRING, value: ["a", "", "ccc"] }],
      ["ints", { type: GgufValueType.ARRAY, arrayType: GgufValueType.INT32, value: [1, -2, 3] }],
    ]);
    await writeGguf(path, meta, [f32Tensor("a", [32, 2], 1.5), f32Tensor("b", [3], 2)]);
    const f = readGguf(path);
    assert.equal(f.metadata.get("u8"), 250);
    assert.equal(f.metadata.get("i8"), -5);
    assert.equal(f.metadata.get("u16"), 65000);
    assert.equal(f.metadata.get("i16"), -32000);
    assert.equal(f.metadata.get("u32"), 4000000000);
    assert.equal(f.metadata.get("i32"), -2000000000);
    assert.equal(f.metadata.get("f32"), 0.5);
    assert.equal(f.metadata.get("bool"), true);
    assert.equal(f.metadata.get("string"), "héllo ✓");
    assert.equal(f.metadata.get("u64"), 2n ** 60n);
    assert.equal(f.metadata.get("i64"), -42);
    assert.equal(f.metadata.get("f64"), 1e-300);
    assert.deepEqual(f.metadata.get("strings"), ["a", "", "ccc"]);
    assert.deepEqual(f.metadata.get("ints"), [1, -2, 3]);
    assert.deepEqual(f.tensors.map((t) => [t.name, t.dims, t.offset % 32]), [["a", [32, 2], 0], ["b", [3], 0]]);
    const data = readFileSync(path);
    assert.equal(data.readFloatLE(f.dataOffset + f.tensors[0]!.offset), 1.5);
    assert.equal(data.readFloatLE(f.dataOffset + f.tensors[1]!.offset + 8), 2);
    assert.equal(data.length % 32, 0);
  });

  it("writes every value type correctly where the header outgrows its buffer (vocabulary-sized arrays)", async () => {
    const cases: [GgufValueType, (i: number) => number | bigint | boolean | string][] = [
      [GgufValueType.UINT8, (i) => i % 251], [GgufValueType.INT8, (i) => (i % 251) - 125], [GgufValueType.UINT16, (i) => (i * 7) % 65536],
      [GgufValueType.INT16, (i) => ((i * 7) % 65536) - 32768], [GgufValueType.UINT32, (i) => (i * 40503) % 2 ** 32], [GgufValueType.INT32, (i) => -((i * 40503) % 2 ** 31)],
      [GgufValueType.FLOAT32, (i) => i / 4], [GgufValueType.FLOAT64, (i) => i / 3], [GgufValueType.UINT64, (i) => BigInt(i) << 33n],
      [GgufValueType.INT64, (i) => -BigInt(i) << 33n], [GgufValueType.BOOL, (i) => i % 3 === 0], [GgufValueType.STRING, (i) => "✓".repeat(i % 5)],
    ];
    for (const [type, valueOf] of cases) {
      const path = join(tmp.path, `grow-${type}.gguf`);
      const values = Array.from({ length: 150_000 }, (_, i) => valueOf(i));
      await writeGguf(path, new Map<string, GgufWriteValue>([["values", { type: GgufValueType.ARRAY, arrayType: type as Exclude<GgufValueType, GgufValueType.ARRAY>, value: values }]]), []);
      const read = readGguf(path, { maxArrayLength: values.length }).metadata.get("values") as unknown[];
      // 64-bit integers come back as numbers where they are safe: compare as text.
      assert.deepEqual(read.map(String), values.map(String), `type ${type}`);
    }
  });
});

describe("GGUF reader on corrupt files", () => {
  const original = readFileSync(STORIES_GGUF);
  const parsed = readGguf(STORIES_GGUF);
  const variant = (name: string, bytes: Buffer): string => {
    const path = join(tmp.path, name);
    writeFileSync(path, bytes);
    return path;
  };

  it("refuses a wrong magic at offset 0", () => {
    const b = Buffer.from(original);
    b.write("GGML", 0);
    const e = expectFormatError(variant("magic.gguf", b), /not a GGUF file/);
    assert.equal(e.offset, 0);
  });

  it("refuses GGUF v1 as obsolete and unknown versions", () => {
    const b = Buffer.from(original);
    b.writeUInt32LE(1, 4);
    assert.equal(expectFormatError(variant("v1.gguf", b), /GGUF v1 is obsolete/).offset, 4);
    b.writeUInt32LE(9, 4);
    expectFormatError(variant("v9.gguf", b), /unsupported GGUF version 9/);
  });

  it("accepts v2 headers", () => {
    const b = Buffer.from(original);
    b.writeUInt32LE(2, 4);
    assert.equal(readGguf(variant("v2.gguf", b)).version, 2);
  });

  it("reports a truncation at every section boundary with its offset", () => {
    // Boundaries: inside magic, version, tensor count, kv count, first key, in the metadata,
    // at the tensor table, inside the tensor table, at the data section, inside the data.
    const firstTensorInfo = (() => {
      // locate the tensor table by the first tensor name's bytes after the metadata
      const name = Buffer.from(parsed.tensors[0]!.name);
      return original.indexOf(name, 24) - 8;
    })();
    const cuts = [2, 6, 12, 20, 30, 200, firstTensorInfo, firstTensorInfo + 10, parsed.dataOffset, parsed.dataOffset + 1000, original.length - 1];
    for (const cut of cuts) {
      const e = expectFormatError(variant(`cut-${cut}.gguf`, original.subarray(0, cut)), /truncated|too small|impossible for a file/);
      assert.ok(e.offset !== undefined && e.offset <= cut + parsed.dataOffset + original.length, `offset for cut ${cut}`);
    }
  });

  it("refuses an impossible tensor count without allocating", () => {
    const b = Buffer.from(original);
    b.writeBigUInt64LE(2n ** 62n, 8);
    const e = expectFormatError(variant("huge-count.gguf", b), /tensor count \d+ is impossible/);
    assert.equal(e.offset, 8);
  });

  it("refuses an impossible metadata count", () => {
    const b = Buffer.from(original);
    b.writeBigUInt64LE(2n ** 40n, 16);
    assert.equal(expectFormatError(variant("huge-kv.gguf", b), /metadata count/).offset, 16);
  });

  it("refuses a string length past the end of the file", () => {
    const b = Buffer.from(original);
    b.writeBigUInt64LE(2n ** 50n, 24); // length of the first key
    assert.equal(expectFormatError(variant("lying-string.gguf", b), /length .* is impossible/).offset, 24);
  });

  it("refuses an unknown metadata value type", () => {
    const b = Buffer.from(original);
    const keyLen = Number(b.readBigUInt64LE(24));
    const typeAt = 24 + 8 + keyLen;
    b.writeUInt32LE(77, typeAt);
    assert.equal(expectFormatError(variant("bad-type.gguf", b), /unknown metadata value type 77/).offset, typeAt);
  });

  it("refuses an unknown tensor type and a lying array length", async () => {
    const path = join(tmp.path, "bad-tensor-type.gguf");
    await writeGguf(path, new Map(), [f32Tensor("t", [4])]);
    const b = readFileSync(path);
    const typeAt = 24 + 8 + 1 + 4 + 8; // header, name, n_dims, one dim
    b.writeUInt32LE(99, typeAt);
    assert.equal(expectFormatError(variant("bad-tensor-type2.gguf", b), /unknown ggml type 99/).offset, typeAt);

    const arrPath = join(tmp.path, "arr.gguf");
    await writeGguf(arrPath, new Map([["k", { type: GgufValueType.ARRAY, arrayType: GgufValueType.UINT32, value: [1, 2] }]]), []);
    const a = readFileSync(arrPath);
    const countAt = 24 + 8 + 1 + 4 + 4;
    a.writeBigUInt64LE(10n ** 15n, countAt);
    assert.equal(expectFormatError(variant("lying-array.gguf", a), /array length of "k"/).offset, countAt);
  });

  it("refuses tensor data that points past the end of the file", () => {
    const b = Buffer.from(original);
    const e = expectFormatError(variant("short-data.gguf", b.subarray(0, b.length - 100)), /truncated: tensor ".*" data ends at byte/);
    assert.ok(e.offset! >= parsed.dataOffset);
  });

  it("copies are read identically (sanity for the variants above)", () => {
    const copy = join(tmp.path, "copy.gguf");
    copyFileSync(STORIES_GGUF, copy);
    assert.equal(readGguf(copy).tensors.length, 48);
  });
});
