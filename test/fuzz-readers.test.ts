import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { FormatError } from "../src/formats/errors.js";
import { GgufValueType, readGguf } from "../src/formats/gguf.js";
import { type GgufWriteValue, writeGguf } from "../src/formats/gguf-writer.js";
import { readHfFolder, readHfTokenizerSummary } from "../src/formats/hf-folder.js";
import { readSafetensors, readSafetensorsModel } from "../src/formats/safetensors.js";
import { writeSafetensors } from "../src/formats/safetensors-writer.js";
import { summarizeGguf, summarizeHfFolder } from "../src/formats/summary.js";
import { cachedInspection } from "../src/registry/inspect.js";
import { f32Tensor, str, u32 } from "./helpers/gguf-fixtures.js";
import { f32Data } from "./helpers/hf-fixtures.js";
import { QWEN_HF, STORIES_CHAT_GGUF, tempDir } from "./helpers/paths.js";

/**
 * Seeded mutation fuzzing of the file readers: every mutated file must be read, or refused with a
 * FormatError; never another exception, a crash or a hang. SHIMMY_FUZZ_CASES (total cases, default
 * 3000) and SHIMMY_FUZZ_SEED run a longer or different corpus (docs/security.md, "Fuzzing").
 */
const CASES = Number(process.env.SHIMMY_FUZZ_CASES ?? 3000);
const SEED = Number(process.env.SHIMMY_FUZZ_SEED ?? 20240607);

/** xorshift32: the same corpus for the same seed on every machine. */
class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  next(): number {
    this.s ^= this.s << 13;
    this.s ^= this.s >>> 17;
    this.s ^= this.s << 5;
    return (this.s >>> 0) / 0x1_0000_0000;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
}

const INTERESTING_U32 = [0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 31, 32, 33, 63, 64, 255, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
const INTERESTING_U64 = [0n, 1n, 8n, 32n, 2n ** 31n, 2n ** 32n, 2n ** 53n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n];

/** One to four byte-level mutations: flips, interesting integers, truncation, duplication, insertion. */
function mutateBytes(rng: Rng, seed: Buffer, size = seed.length): Buffer {
  let b = Buffer.from(seed.subarray(0, size));
  const ops = 1 + rng.int(4);
  for (let i = 0; i < ops && b.length > 0; i++) {
    const at = rng.int(b.length);
    switch (rng.int(7)) {
      case 0: b[at] = b[at]! ^ (1 << rng.int(8)); break;
      case 1: b[at] = rng.int(256); break;
      case 2: if (at + 4 <= b.length) b.writeUInt32LE(rng.pick(INTERESTING_U32), at); break;
      case 3: if (at + 8 <= b.length) b.writeBigUInt64LE(rng.pick(INTERESTING_U64), at); break;
      case 4: b = b.subarray(0, at); break;
      case 5: {
        const len = 1 + rng.int(64);
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + len), b.subarray(at)]);
        break;
      }
      default: {
        const junk = Buffer.alloc(1 + rng.int(16));
        for (let j = 0; j < junk.length; j++) junk[j] = rng.int(256);
        b = Buffer.concat([b.subarray(0, at), junk, b.subarray(at)]);
      }
    }
  }
  return b;
}

const INTERESTING_JSON: unknown[] = [
  null, true, 0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 2, "", "x", "../../etc/passwd", "/etc/passwd", "..", "F32", "constructor", "__proto__",
  [], [null], [-1, 2], [[1, 2], [3]], {}, { content: null }, { type: "Sequence", pretokenizers: [null] },
];

function deepNest(rng: Rng): string {
  const depth = rng.pick([200, 300, 5000, 50_000]);
  return rng.next() < 0.5 ? "[".repeat(depth) + "]".repeat(depth) : '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
}

/** Structural JSON mutations (a value replaced, a key removed, deep nesting), else byte mutations of the text. */
function mutateJson(rng: Rng, seed: unknown): string {
  if (rng.next() < 0.25) return mutateBytes(rng, Buffer.from(JSON.stringify(seed))).toString("utf8");
  const root = structuredClone(seed);
  const ops = 1 + rng.int(3);
  let deep: string | undefined;
  for (let i = 0; i < ops; i++) {
    // Walk to a random container.
    let node: unknown = root;
    for (let d = 0; d < 4 && typeof node === "object" && node !== null && rng.next() < 0.7; d++) {
      const keys = Object.keys(node);
      if (keys.length === 0) break;
      const next = (node as Record<string, unknown>)[rng.pick(keys)];
      if (typeof next !== "object" || next === null) break;
      node = next;
    }
    if (typeof node !== "object" || node === null) continue;
    const keys = Object.keys(node);
    const key = keys.length > 0 && rng.next() < 0.85 ? rng.pick(keys) : `fuzz_${rng.int(100)}`;
    const container = node as Record<string, unknown>;
    const r = rng.next();
    if (r < 0.1) delete container[key];
    else if (r < 0.15) {
      container[key] = "__DEEP__";
      deep = deepNest(rng);
    } else container[key] = structuredClone(rng.pick(INTERESTING_JSON));
  }
  const text = JSON.stringify(root);
  return deep ? text.replace('"__DEEP__"', deep) : text;
}

/** Runs one case; returns a description of any exception that is not a FormatError. */
function untyped(label: string, fn: () => void): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof FormatError) return undefined;
    return `${label}: ${e instanceof Error ? `${e.name}: ${e.message.slice(0, 200)}` : String(e)}`;
  }
  return undefined;
}

const tmp = tempDir("shimmy-fuzz-");
after(() => tmp.cleanup());

function assertAllTyped(failures: string[], cases: number): void {
  assert.ok(cases > 0);
  assert.deepEqual(failures.slice(0, 10), [], `${failures.length} of ${cases} cases raised untyped errors (SHIMMY_FUZZ_SEED=${SEED})`);
}

describe(`reader fuzzing (seed ${SEED}, ${CASES} cases)`, { timeout: 10 * 60_000 }, () => {
  const ggufSeeds: Buffer[] = [];
  let stSeed: Buffer;
  before(async () => {
    // The real chat model's header and metadata (its tensor data cut off), and small complete files.
    const chat = readGguf(STORIES_CHAT_GGUF, { maxArrayLength: 0 });
    ggufSeeds.push(readFileSync(STORIES_CHAT_GGUF).subarray(0, chat.dataOffset + 256));
    const meta: Record<string, GgufWriteValue> = {
      "general.architecture": str("llama"),
      "general.alignment": u32(32),
      "llama.context_length": u32(128),
      "x.i64": { type: GgufValueType.INT64, value: -5n },
      "x.f64": { type: GgufValueType.FLOAT64, value: 0.5 },
      "x.bool": { type: GgufValueType.BOOL, value: true },
      "tokenizer.ggml.tokens": { type: GgufValueType.ARRAY, arrayType: GgufValueType.STRING, value: ["<s>", "</s>", "a", "b", "c", "d", "e", "f", "g", "h"] },
      "x.u16s": { type: GgufValueType.ARRAY, arrayType: GgufValueType.UINT16, value: [1, 2, 3] },
    };
    const small = join(tmp.path, "seed.gguf");
    await writeGguf(small, new Map(Object.entries(meta)), [f32Tensor("token_embd.weight", [8, 4]), f32Tensor("output_norm.weight", [8]), { name: "q", dims: [32], type: 8, data: () => Buffer.alloc(34) }]);
    ggufSeeds.push(readFileSync(small));
    const st = join(tmp.path, "seed.safetensors");
    writeSafetensors(st, [
      { name: "a", dtype: "F32", shape: [2, 3], data: f32Data(new Float32Array(6)) },
      { name: "b", dtype: "BF16", shape: [4], data: Buffer.alloc(8) },
      { name: "c", dtype: "I64", shape: [], data: Buffer.alloc(8) },
    ], { format: "pt" });
    stSeed = readFileSync(st);
  });

  it("GGUF: every mutated file is read or refused with a FormatError", () => {
    const rng = new Rng(SEED);
    const path = join(tmp.path, "case.gguf");
    const failures: string[] = [];
    const cases = Math.ceil(CASES * 0.4);
    for (let i = 0; i < cases; i++) {
      writeFileSync(path, mutateBytes(rng, rng.pick(ggufSeeds)));
      const bounded = i % 2 === 0;
      const failure = untyped(`gguf case ${i}`, () => {
        const f = readGguf(path, bounded ? { maxArrayLength: 8, previewLength: 8 } : {});
        summarizeGguf([f]);
      });
      if (failure) failures.push(failure);
    }
    assertAllTyped(failures, cases);
  });

  it("SafeTensors: every mutated header is read or refused with a FormatError", () => {
    const rng = new Rng(SEED ^ 0x5afe);
    const path = join(tmp.path, "case.safetensors");
    const headerLength = Number(stSeed.readBigUInt64LE(0));
    const header = JSON.parse(stSeed.subarray(8, 8 + headerLength).toString("utf8"));
    const data = stSeed.subarray(8 + headerLength);
    const failures: string[] = [];
    const cases = Math.ceil(CASES * 0.3);
    for (let i = 0; i < cases; i++) {
      let bytes: Buffer;
      if (rng.next() < 0.3) bytes = mutateBytes(rng, stSeed);
      else {
        const text = Buffer.from(mutateJson(rng, header));
        const len = Buffer.alloc(8);
        len.writeBigUInt64LE(BigInt(text.length));
        bytes = Buffer.concat([len, text, data]);
      }
      writeFileSync(path, bytes);
      const failure = untyped(`safetensors case ${i}`, () => readSafetensors(path));
      if (failure) failures.push(failure);
    }
    assertAllTyped(failures, cases);
  });

  it("HF folders: mutated config, index, tokenizer config and tokenizer are read or refused with a FormatError", () => {
    const rng = new Rng(SEED ^ 0xf01d);
    const dir = join(tmp.path, "hf");
    mkdirSync(dir);
    // Two shards (copies of one checkpoint would clash): index entries point at real files.
    copyFileSync(join(QWEN_HF, "model.safetensors"), join(dir, "model-00001-of-00001.safetensors"));
    const weightMap = Object.fromEntries(readSafetensors(join(QWEN_HF, "model.safetensors")).tensors.map((t) => [t.name, "model-00001-of-00001.safetensors"]));
    const seeds: Record<string, unknown> = {
      "config.json": JSON.parse(readFileSync(join(QWEN_HF, "config.json"), "utf8")),
      "tokenizer_config.json": JSON.parse(readFileSync(join(QWEN_HF, "tokenizer_config.json"), "utf8")),
      "tokenizer.json": JSON.parse(readFileSync(join(QWEN_HF, "tokenizer.json"), "utf8")),
      "model.safetensors.index.json": { metadata: { total_size: 1 }, weight_map: weightMap },
    };
    const names = Object.keys(seeds);
    const failures: string[] = [];
    const cases = Math.ceil(CASES * 0.3);
    for (let i = 0; i < cases; i++) {
      const target = rng.pick(names);
      for (const name of names) writeFileSync(join(dir, name), name === target ? mutateJson(rng, seeds[name]) : JSON.stringify(seeds[name]));
      const failure = untyped(`hf case ${i} (${target})`, () => {
        summarizeHfFolder(readHfFolder(dir));
        readSafetensorsModel(dir);
        readHfTokenizerSummary(dir);
      });
      if (failure) failures.push(failure);
    }
    rmSync(dir, { recursive: true });
    assertAllTyped(failures, cases);
  });

  it("inspection of a mutated model reports errors in one line each, never throws", () => {
    const rng = new Rng(SEED ^ 0x1f);
    const path = join(tmp.path, "inspect.gguf");
    for (let i = 0; i < 50; i++) {
      writeFileSync(path, mutateBytes(rng, ggufSeeds[1]!));
      const report = cachedInspection({ name: `fuzz-${i}`, files: [path], format: "gguf" } as Parameters<typeof cachedInspection>[0]);
      for (const e of report.errors) assert.doesNotMatch(e, /\n|is not a function|Cannot read properties|Maximum call stack/, e);
    }
  });
});
