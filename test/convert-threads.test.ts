import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { writeSyntheticHfLlama } from "../src/convert/synthetic-hf.js";
import { converterFor } from "../src/convert/architectures/index.js";
import { convertHfFolder } from "../src/convert/convert.js";
import { decodeToF32 } from "../src/convert/half.js";
import { encode, encodeQ8_0, type OutputType } from "../src/convert/quantize.js";
import { readGguf } from "../src/formats/gguf.js";
import { readHfFolder } from "../src/formats/hf-folder.js";
import { readSafetensorsData, readSafetensorsModel } from "../src/formats/safetensors.js";
import { MODELS_DIR, QWEN_HF, STORIES_HF, tempDir } from "./helpers/paths.js";

const tmp = tempDir();
after(() => tmp.cleanup());
let n = 0;
const out = (label: string): string => join(tmp.path, `${label}-${++n}.gguf`);
const sha256 = (path: string): string => createHash("sha256").update(readFileSync(path)).digest("hex");

/** HF rotate-half → llama.cpp interleaved row order, written out plainly as the reference. */
function permuteRows(x: Float32Array, rows: number, heads: number): Float32Array {
  const cols = x.length / rows;
  const perHead = rows / heads;
  const out = new Float32Array(x.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < perHead / 2; i++) {
      for (let j = 0; j < 2; j++) {
        out.set(x.subarray((h * perHead + j * (perHead / 2) + i) * cols, (h * perHead + j * (perHead / 2) + i + 1) * cols), (h * perHead + i * 2 + j) * cols);
      }
    }
  }
  return out;
}

/**
 * Every tensor of `gguf` equals the one-tensor-at-a-time conversion of its source: decode to
 * float32, reorder q/k rows, encode (or the source bytes as they are for same-type tensors).
 */
function assertMatchesReference(dir: string, gguf: string): void {
  const folder = readHfFolder(dir);
  const plans = converterFor(folder.config.architectures[0])!.plan(folder.config, readSafetensorsModel(dir).tensors, join(dir, "config.json"));
  const file = readGguf(gguf, { maxArrayLength: 0 });
  const bytes = readFileSync(gguf);
  for (const t of file.tensors) {
    const plan = plans.find((p) => p.name === t.name)!;
    const source = plan.sources[0];
    if (!source) continue;
    const type = t.typeName.toLowerCase() as OutputType;
    const raw = readSafetensorsData(source);
    const sameType = `${source.dtype.toLowerCase()}` === type;
    let expected: Buffer;
    if (sameType && !plan.permuteHeads) expected = raw;
    else {
      const x = decodeToF32(raw, source.dtype);
      expected = encode(plan.permuteHeads ? permuteRows(x, plan.shape[0]!, plan.permuteHeads) : x, type);
    }
    const at = file.dataOffset + t.offset;
    assert.ok(bytes.subarray(at, at + t.bytes).equals(expected), `${t.name} (${source.dtype} → ${type}${plan.permuteHeads ? ", rows permuted" : ""})`);
  }
}

describe("converting with encode threads", () => {
  const shared = { "stories260K (F32)": STORIES_HF, "tiny-qwen2 (BF16)": QWEN_HF, "tiny-agent (BF16)": join(MODELS_DIR, "tiny-agent", "hf") };
  for (const [name, dir] of Object.entries(shared)) {
    for (const type of ["f16", "q8_0"] as const) {
      it(`${name} → ${type}: two threads write the same bytes as the calling thread, and those of the reference`, async () => {
        const inline = out("inline");
        const threaded = out("threaded");
        await convertHfFolder(dir, inline, type, undefined, { workers: 0 });
        await convertHfFolder(dir, threaded, type, undefined, { workers: 2 });
        assert.equal(sha256(threaded), sha256(inline));
        assertMatchesReference(dir, threaded);
      });
    }
  }

  it("two conversions at once (threads of their own beside the shared ones) and one after them (reusing threads) write the calling thread's bytes", async () => {
    const dir = join(MODELS_DIR, "tiny-agent", "hf");
    const inline = out("inline");
    await convertHfFolder(dir, inline, "q8_0", undefined, { workers: 0 });
    const outputs = [out("together"), out("together"), out("after")];
    await Promise.all(outputs.slice(0, 2).map((o) => convertHfFolder(dir, o, "q8_0", undefined, { workers: 2 })));
    await convertHfFolder(dir, outputs[2]!, "q8_0", undefined, { workers: 2 });
    for (const o of outputs) assert.equal(sha256(o), sha256(inline), o);
  });

  // Tensors of a few MB are cut into several blocks (whole heads for the permuted q/k rows).
  for (const dtype of ["BF16", "F32"] as const) {
    it(`a ${dtype} llama with multi-block tensors converts to f16, q8_0 and its own type exactly, with progress per tensor`, async () => {
      const dir = join(tmp.path, `multi-${dtype}`);
      writeSyntheticHfLlama(dir, { hidden: 1024, layers: 1, ffn: 512, vocab: 1024, dtype, seed: 3, tokenizerFrom: STORIES_HF });
      for (const type of ["f16", "q8_0", dtype.toLowerCase()] as OutputType[]) {
        const gguf = out(`multi-${type}`);
        const seen: number[] = [];
        let last = 0;
        await convertHfFolder(dir, gguf, type, (p) => {
          seen.push(p.index);
          assert.ok(p.bytesRead > last && p.bytesRead <= p.bytesTotal);
          last = p.bytesRead;
        }, { workers: 2 });
        assert.deepEqual(seen, readGguf(gguf, { maxArrayLength: 0 }).tensors.map((_, i) => i + 1));
        assertMatchesReference(dir, gguf);
        const inline = out(`multi-${type}-inline`);
        await convertHfFolder(dir, inline, type, undefined, { workers: 0 });
        assert.equal(sha256(inline), sha256(gguf));
      }
    });
  }

  it("Q8_0 rounds halves away from zero, keeps -0 and NaN at 0, and takes its scale from the largest non-NaN magnitude", () => {
    const x = new Float32Array(32).map((_, i) => (i % 2 ? -1 : 1) * (i + 0.5));
    x[0] = -0;
    x[1] = Number.NaN;
    const q8 = encodeQ8_0(x);
    let amax = 0;
    for (const v of x) if (Math.abs(v) > amax) amax = Math.abs(v);
    const d = Math.fround(amax / 127);
    const id = Math.fround(1 / d);
    for (let j = 0; j < 32; j++) {
      const v = Math.fround(x[j]! * id);
      const roundf = Number.isNaN(v) ? 0 : Math.sign(v) * Math.floor(Math.abs(v) + 0.5);
      assert.equal(q8.readInt8(2 + j), roundf === 0 ? 0 : roundf, `q8[${j}] of ${x[j]}`);
    }
    // Exact ties: d = 127/127 = 1, so x ± 0.5 sits halfway between two integers.
    const ties = new Float32Array(32).map((_, i) => (i % 2 ? -1 : 1) * (i + 0.5));
    ties[31] = -127;
    const qt = encodeQ8_0(ties);
    for (let j = 0; j < 31; j++) assert.equal(qt.readInt8(2 + j), (j % 2 ? -1 : 1) * (j + 1), `tie ${ties[j]}`);
  });
});
