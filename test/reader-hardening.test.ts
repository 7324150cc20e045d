import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { FormatError } from "../src/formats/errors.js";
import { GgufSkippedArray, GgufValueType, readGguf } from "../src/formats/gguf.js";
import { type GgufWriteValue, writeGguf } from "../src/formats/gguf-writer.js";
import { readHfFolder } from "../src/formats/hf-folder.js";
import { jsonDepth, MAX_JSON_DEPTH } from "../src/formats/json.js";
import { readSafetensors, readSafetensorsModel } from "../src/formats/safetensors.js";
import { copyHfFolder } from "./helpers/hf-fixtures.js";
import { f32Tensor, str, u32 } from "./helpers/gguf-fixtures.js";
import { runCli } from "./helpers/cli.js";
import { STORIES_GGUF, STORIES_HF, tempDir } from "./helpers/paths.js";

const tmp = tempDir();
after(() => tmp.cleanup());

function expectFormatError(fn: () => unknown, pattern: RegExp): FormatError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof FormatError, `expected FormatError, got ${String(e)}`);
    assert.match(e.message, pattern);
    return e;
  }
  assert.fail("no error was raised");
}

/** Replaces every occurrence of `from` with `to` (same length) in a file's bytes. */
function patch(bytes: Buffer, from: string, to: string): Buffer {
  assert.equal(from.length, to.length);
  const out = Buffer.from(bytes);
  let at = out.indexOf(from);
  assert.ok(at >= 0, `"${from}" is in the file`);
  while (at >= 0) {
    out.write(to, at);
    at = out.indexOf(from, at + 1);
  }
  return out;
}

async function gguf(name: string, meta: Record<string, GgufWriteValue>, tensors = [f32Tensor("ta", [8]), f32Tensor("tb", [8])]): Promise<string> {
  const path = join(tmp.path, name);
  await writeGguf(path, new Map(Object.entries(meta)), tensors);
  return path;
}

function variant(name: string, bytes: Buffer): string {
  const path = join(tmp.path, name);
  writeFileSync(path, bytes);
  return path;
}

describe("GGUF reader refuses what llama.cpp's gguf.cpp refuses", () => {
  it("duplicate metadata keys and empty keys", async () => {
    const bytes = readFileSync(await gguf("keys.gguf", { "k.aa": str("x"), "k.ab": str("y") }));
    expectFormatError(() => readGguf(variant("dup-key.gguf", patch(bytes, "k.ab", "k.aa"))), /duplicate metadata key "k\.aa"/);
    const empty = readFileSync(await gguf("empty-key.gguf", { "": str("x") }));
    expectFormatError(() => readGguf(variant("empty-key2.gguf", empty)), /key of metadata entry 0 is empty/);
  });

  it("duplicate tensor names and names of 64 bytes or more", async () => {
    const bytes = readFileSync(await gguf("names.gguf", {}));
    expectFormatError(() => readGguf(variant("dup-tensor.gguf", patch(bytes, "tb", "ta"))), /duplicate tensor name "ta"/);
    const long = await gguf("long-name.gguf", {}, [f32Tensor("t".repeat(64), [8])]);
    expectFormatError(() => readGguf(long), /longer than 63 bytes/);
    assert.equal(readGguf(await gguf("name-63.gguf", {}, [f32Tensor("t".repeat(63), [8])])).tensors.length, 1);
  });

  it("general.alignment that is not a u32 non-zero power of two", async () => {
    const u64 = await gguf("align-u64.gguf", { "general.alignment": { type: GgufValueType.UINT64, value: 32 } });
    expectFormatError(() => readGguf(u64), /general\.alignment must be a u32, not UINT64/);
    const three = readFileSync(await gguf("align-64.gguf", { "general.alignment": u32(64) }));
    const at = three.indexOf("general.alignment") + "general.alignment".length + 4;
    for (const bad of [0, 3, 48]) {
      const b = Buffer.from(three);
      b.writeUInt32LE(bad, at);
      expectFormatError(() => readGguf(variant(`align-${bad}.gguf`, b)), new RegExp(`general\\.alignment ${bad} is not a power of two`));
    }
    assert.equal(readGguf(variant("align-ok.gguf", three)).alignment, 64);
  });

  it("tensor data that overlaps, leaves a gap or is misaligned", async () => {
    const path = await gguf("layout.gguf", {});
    const parsed = readGguf(path);
    assert.deepEqual(parsed.tensors.map((t) => t.offset), [0, 32]);
    const bytes = readFileSync(path);
    // The second tensor's offset is the last u64 of the tensor table.
    const offsetAt = bytes.indexOf("tb") + 2 + 4 + 8 + 4;
    assert.equal(bytes.readBigUInt64LE(offsetAt), 32n);
    for (const [offset, label] of [[0n, "overlap"], [64n, "gap"], [16n, "misaligned"]] as const) {
      const b = Buffer.from(bytes);
      b.writeBigUInt64LE(offset, offsetAt);
      expectFormatError(() => readGguf(variant(`${label}.gguf`, b)), new RegExp(`tensor "tb" data starts at offset ${offset}, expected 32`));
    }
  });

  it("tensors whose element count overflows", async () => {
    const bytes = readFileSync(await gguf("big.gguf", {}, [f32Tensor("t", [8, 1])]));
    const dimsAt = bytes.indexOf("t\x02\x00\x00\x00") + 1 + 4;
    bytes.writeBigUInt64LE(2n ** 40n, dimsAt);
    bytes.writeBigUInt64LE(2n ** 40n, dimsAt + 8);
    expectFormatError(() => readGguf(variant("overflow.gguf", bytes)), /elements, more than llama\.cpp can address/);
  });

  it("keeps the first elements of stepped-over arrays when asked", () => {
    const full = readGguf(STORIES_GGUF).metadata.get("tokenizer.ggml.tokens") as string[];
    const tokens = readGguf(STORIES_GGUF, { maxArrayLength: 8, previewLength: 8 }).metadata.get("tokenizer.ggml.tokens");
    assert.ok(tokens instanceof GgufSkippedArray);
    assert.equal(tokens.length, full.length);
    assert.deepEqual(tokens.first, full.slice(0, 8));
  });
});

function rawSafetensors(name: string, header: string, data = Buffer.alloc(0)): string {
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(header)));
  return variant(name, Buffer.concat([len, Buffer.from(header), data]));
}

describe("SafeTensors and HF folder readers: typed errors only", () => {
  it("null, array or scalar tensor entries", () => {
    for (const [label, entry] of [["null", "null"], ["array", "[1]"], ["number", "7"]]) {
      expectFormatError(() => readSafetensors(rawSafetensors(`entry-${label}.safetensors`, `{"w":${entry}}`)), /tensor "w" is .*, not an object/);
    }
  });

  it("shapes and headers nested past the depth limit", () => {
    const deep = "[".repeat(100_000) + "]".repeat(100_000);
    const e = expectFormatError(() => readSafetensors(rawSafetensors("deep-shape.safetensors", `{"w":{"dtype":"F32","shape":${deep},"data_offsets":[0,0]}}`)), /header is nested more than 256 levels deep/);
    assert.equal(e.offset, 8);
    const nested = "[".repeat(10) + "]".repeat(10);
    expectFormatError(() => readSafetensors(rawSafetensors("nested-shape.safetensors", `{"w":{"dtype":"F32","shape":${nested},"data_offsets":[0,0]}}`)), /invalid shape \[\[\[/);
    expectFormatError(() => readSafetensors(rawSafetensors("proto.safetensors", `{"w":{"dtype":"constructor","shape":[],"data_offsets":[0,0]}}`)), /unknown dtype "constructor"/);
  });

  it("counts depth outside strings only", () => {
    assert.equal(jsonDepth(`{"a":[1,{"b":"[[[{{{\\"["}]}`), 3);
    assert.equal(jsonDepth("[".repeat(MAX_JSON_DEPTH + 10), MAX_JSON_DEPTH), MAX_JSON_DEPTH + 1);
  });

  it("a directory or missing file where a weight file should be", () => {
    const dir = join(tmp.path, "weights-dir.safetensors");
    mkdirSync(dir, { recursive: true });
    expectFormatError(() => readSafetensors(dir), /not a regular file/);
    expectFormatError(() => readSafetensors(join(tmp.path, "absent.safetensors")), /cannot open: ENOENT/);
    expectFormatError(() => readGguf(join(tmp.path, "absent.gguf")), /cannot open: ENOENT/);
  });

  it("shard names outside the folder, in readHfFolder as in the checkpoint reader", () => {
    const dir = copyHfFolder(STORIES_HF, join(tmp.path, "traversal"), { shards: 2 });
    const indexPath = join(dir, "model.safetensors.index.json");
    const index = JSON.parse(readFileSync(indexPath, "utf8"));
    for (const bad of ["../../etc/passwd", "/etc/passwd", "..", "", 7]) {
      index.weight_map["model.norm.weight"] = bad;
      writeFileSync(indexPath, JSON.stringify(index));
      for (const read of [() => readHfFolder(dir), () => readSafetensorsModel(dir)]) {
        const e = expectFormatError(read, /is not a plain file name/);
        assert.equal(e.file, indexPath);
      }
    }
  });

  it("a config.json nested 50,000 deep: readers and `shimmy inspect` report it in one line", () => {
    const dir = copyHfFolder(STORIES_HF, join(tmp.path, "deepconfig"));
    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    writeFileSync(join(dir, "config.json"), JSON.stringify(config).replace(/}$/, `,"x":${"[".repeat(50_000)}${"]".repeat(50_000)}}`));
    expectFormatError(() => readHfFolder(dir), /config\.json: the file is nested more than 256 levels deep/);
    const r = runCli(["inspect", dir, "--json"], { SHIMMY_NO_DEFAULT_LOCATIONS: "1" });
    assert.equal(r.status, 1);
    assert.doesNotMatch(r.stderr, /RangeError|Maximum call stack/);
    assert.match(JSON.parse(r.stdout).errors[0], /nested more than 256 levels deep/);
  });
});
