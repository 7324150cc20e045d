import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { blockLayout, type DequantizableType, dequantize } from "../src/convert/export/dequantize.js";
import { f16ToF32, f32ToF16 } from "../src/convert/half.js";
import { encode } from "../src/convert/quantize.js";
import { randomBytes } from "./helpers/random-bytes.js";

const fr = Math.fround;

function randomValues(n: number, seed: number): Float32Array {
  const b = randomBytes(n * 2, seed);
  return Float32Array.from({ length: n }, (_, i) => ((b[2 * i]! | (b[2 * i + 1]! << 8)) / 65535 - 0.5) * 0.2);
}

const setHalf = (b: Uint8Array, o: number, v: number): void => {
  const h = f32ToF16(v);
  b[o] = h & 0xff;
  b[o + 1] = h >>> 8;
};
const half = (b: Uint8Array, o: number): number => fr(f16ToF32(b[o]! | (b[o + 1]! << 8)));
const int8 = (v: number): number => (v << 24) >> 24;

/** `blocks` random blocks of `type` whose f16 scale fields hold small finite values. */
function randomBlocks(type: DequantizableType, blocks: number, seed: number, halfFields: number[]): Uint8Array {
  const { typeSize } = blockLayout(type);
  const data = randomBytes(blocks * typeSize, seed);
  for (let b = 0; b < blocks; b++) for (const [k, o] of halfFields.entries()) setHalf(data, b * typeSize + o, (k === 0 ? 0.01 : 0.003) * (1 + b));
  return data;
}

function run(type: DequantizableType, data: Uint8Array): Float32Array {
  const n = (data.length / blockLayout(type).typeSize) * blockLayout(type).blockSize;
  const out = new Float32Array(n);
  dequantize(type, data, n, out);
  return out;
}

/**
 * An element-at-a-time reading of each K-quant block layout (ggml-common.h's structs): where
 * element i's quant bits, sub-block scale and min live, with ggml's float32 rounding order.
 */
const K_REFERENCE: Partial<Record<DequantizableType, (b: Uint8Array, i: number) => number>> = {
  Q2_K: (b, i) => {
    const [n, j, part, l] = [i >> 7, (i >> 5) & 3, (i >> 4) & 1, i & 15];
    const sc = b[n * 8 + j * 2 + part]!;
    const q = (b[16 + n * 32 + part * 16 + l]! >> (2 * j)) & 3;
    return fr(fr(fr(half(b, 80) * (sc & 15)) * q) - fr(half(b, 82) * (sc >> 4)));
  },
  Q3_K: (b, i) => {
    const [n, j, part, l] = [i >> 7, (i >> 5) & 3, (i >> 4) & 1, i & 15];
    const is = n * 8 + j * 2 + part;
    const low = is < 8 ? b[96 + is]! & 15 : b[96 + is - 8]! >> 4;
    const high = (b[96 + 8 + (is % 4)]! >> (2 * Math.floor(is / 4))) & 3;
    const q = (b[32 + n * 32 + part * 16 + l]! >> (2 * j)) & 3;
    const hbit = (b[part * 16 + l]! >> (n * 4 + j)) & 1;
    return fr(fr(half(b, 108) * ((low | (high << 4)) - 32)) * (q - (hbit ? 0 : 4)));
  },
  Q4_K: (b, i) => kQuant45(b, i, false),
  Q5_K: (b, i) => kQuant45(b, i, true),
  Q6_K: (b, i) => {
    const [n, k, l] = [i >> 7, (i >> 5) & 3, i & 31];
    const byte = b[n * 64 + (k & 1) * 32 + l]!;
    const low = k >= 2 ? byte >> 4 : byte & 15;
    const high = (b[128 + n * 32 + l]! >> (2 * k)) & 3;
    const sc = int8(b[192 + n * 8 + (l >> 4) + 2 * k]!);
    return fr(fr(half(b, 208) * sc) * ((low | (high << 4)) - 32));
  },
};

/** Q4_K / Q5_K: eight sub-blocks of 32 with 6-bit scales and mins packed into 12 bytes at offset 4. */
function kQuant45(b: Uint8Array, i: number, fifthBit: boolean): number {
  const [c, sub, l] = [i >> 6, (i >> 5) & 1, i & 31];
  const j = 2 * c + sub;
  const s = (k: number): number => b[4 + k]!;
  const scale = j < 4 ? s(j) & 63 : (s(j + 4) & 15) | ((s(j - 4) >> 6) << 4);
  const min = j < 4 ? s(j + 4) & 63 : (s(j + 4) >> 4) | ((s(j) >> 6) << 4);
  const qs = fifthBit ? 48 : 16;
  const byte = b[qs + c * 32 + l]!;
  const q = (sub ? byte >> 4 : byte & 15) + (fifthBit && (b[16 + l]! >> j) & 1 ? 16 : 0);
  return fr(fr(fr(half(b, 0) * scale) * q) - fr(half(b, 2) * min));
}

describe("dequantize", () => {
  it("Q8_0 and Q4_0 blocks from our quantizer decode to within half a step (Q4_0: one step) and re-encode to the same bytes", () => {
    const x = randomValues(32 * 64, 7);
    // The step is rounded to f16 (relative error 2^-11) and multiplied by up to 127 (Q8_0) or 8 (Q4_0).
    for (const [type, name, bound] of [["q8_0", "Q8_0", 0.5 + 127 * 2 ** -11], ["q4_0", "Q4_0", 1 + 8 * 2 ** -11]] as const) {
      const blocks = encode(x, type);
      const y = new Float32Array(x.length);
      dequantize(name, blocks, x.length, y);
      const size = blockLayout(name).typeSize;
      for (let i = 0; i < x.length; i++) {
        const d = Math.abs(half(blocks, Math.floor(i / 32) * size));
        assert.ok(Math.abs(y[i]! - x[i]!) <= bound * d * 1.0001, `${name} value ${i}: ${y[i]} vs ${x[i]} (step ${d})`);
      }
      assert.deepEqual(encode(y, type), blocks, `${name} re-encodes to the same blocks`);
    }
  });

  it("Q8_0: d × q with q signed", () => {
    const b = new Uint8Array(34);
    setHalf(b, 0, 0.5);
    for (let j = 0; j < 32; j++) b[2 + j] = (j * 8 - 128) & 0xff;
    assert.deepEqual([...run("Q8_0", b)], Array.from({ length: 32 }, (_, j) => (j * 8 - 128) * 0.5));
  });

  it("Q4_0 / Q4_1: low nibbles are values 0–15, high nibbles 16–31", () => {
    const q40 = new Uint8Array(18);
    setHalf(q40, 0, 0.25);
    for (let j = 0; j < 16; j++) q40[2 + j] = j | ((15 - j) << 4);
    const expected = [...Array.from({ length: 16 }, (_, j) => (j - 8) * 0.25), ...Array.from({ length: 16 }, (_, j) => (7 - j) * 0.25)];
    assert.deepEqual([...run("Q4_0", q40)], expected);

    const q41 = new Uint8Array(20);
    setHalf(q41, 0, 0.5);
    setHalf(q41, 2, -1);
    for (let j = 0; j < 16; j++) q41[4 + j] = j | ((15 - j) << 4);
    assert.deepEqual([...run("Q4_1", q41)], [...Array.from({ length: 16 }, (_, j) => j * 0.5 - 1), ...Array.from({ length: 16 }, (_, j) => (15 - j) * 0.5 - 1)]);
  });

  it("Q5_0 / Q5_1: the fifth bit of value j is bit j of the little-endian qh word", () => {
    for (const [type, headerBytes, offset] of [["Q5_0", 2, -16], ["Q5_1", 4, 0]] as const) {
      const b = new Uint8Array(headerBytes + 20);
      setHalf(b, 0, 1);
      if (type === "Q5_1") setHalf(b, 2, 0.5);
      // High bits set for values 0, 9, 17 and 31.
      const qh = (1 << 0) | (1 << 9) | (1 << 17) | (1 << 31);
      for (let k = 0; k < 4; k++) b[headerBytes + k] = (qh >>> (8 * k)) & 0xff;
      for (let j = 0; j < 16; j++) b[headerBytes + 4 + j] = 3 | (5 << 4);
      const y = run(type, b);
      const m = type === "Q5_1" ? 0.5 : 0;
      for (let i = 0; i < 32; i++) {
        const low = i < 16 ? 3 : 5;
        const high = (qh >>> i) & 1 ? 16 : 0;
        assert.equal(y[i], low + high + offset + m, `${type} value ${i}`);
      }
    }
  });

  const halfFields: Record<string, number[]> = { Q2_K: [80, 82], Q3_K: [108], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208] };
  for (const type of ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"] as const) {
    it(`${type}: random blocks equal an element-at-a-time reading of the block layout`, () => {
      const blocks = 3;
      const data = randomBlocks(type, blocks, 11 + type.charCodeAt(1), halfFields[type]!);
      const y = run(type, data);
      const { typeSize } = blockLayout(type);
      for (let b = 0; b < blocks; b++) {
        const block = data.subarray(b * typeSize, (b + 1) * typeSize);
        for (let i = 0; i < 256; i++) assert.equal(y[b * 256 + i], K_REFERENCE[type]!(block, i), `${type} block ${b} value ${i}`);
      }
      assert.ok(new Set(y).size > 20, "the random blocks decode to many distinct values");
    });
  }

  it("F16, BF16 and F32 decode bit-exactly; a partial block is refused", () => {
    const x = Float32Array.from([1, -2.5, 65504, 2 ** -24, 0]);
    const f16 = Buffer.alloc(10);
    x.forEach((v, i) => f16.writeUInt16LE(f32ToF16(v), 2 * i));
    assert.deepEqual([...run("F16", f16)], [...x]);
    const bf16 = Buffer.alloc(10);
    x.forEach((v, i) => bf16.writeUInt16LE(new Uint32Array(Float32Array.of(v).buffer)[0]! >>> 16, 2 * i));
    assert.deepEqual([...run("BF16", bf16)].slice(0, 2), [1, -2.5]);
    assert.deepEqual([...run("F32", new Uint8Array(x.buffer))], [...x]);
    assert.throws(() => dequantize("Q8_0", new Uint8Array(34), 16, new Float32Array(16)), /multiple of 32/);
  });
});
