import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { KERNELS_MODULE, renderKernelsModule } from "../scripts/simd-kernels-build.js";
import { f16ToF32, f32BitsToBf16, f32BitsToF16 } from "../src/convert/half.js";
import { encodeQ8_0 } from "../src/convert/quantize.js";
import { type Kernel, instantiateKernels, KERNEL_SLACK } from "../src/convert/simd-kernels.js";

/** Runs `kernel` over `input` (placed at byte 0) and returns `outBytes` bytes of its output. */
function runKernel(pick: (k: ReturnType<typeof instantiateKernels>) => Kernel, input: Uint8Array, n: number, outBytes: number): Uint8Array {
  const outAt = Math.ceil(input.length / 16) * 16 + KERNEL_SLACK;
  const k = instantiateKernels(outAt + outBytes + KERNEL_SLACK);
  k.bytes.set(input);
  pick(k)(0, outAt, n);
  return k.bytes.slice(outAt, outAt + outBytes);
}

const bytesOf = (a: Uint16Array | Uint32Array | Float32Array | Float64Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const every16 = Uint16Array.from({ length: 65536 }, (_, i) => i);

/** float32 bit patterns: every sign/exponent/top-7-mantissa prefix with low halves at each rounding boundary of f16 and bf16. */
function f32Patterns(): Uint32Array {
  const lows = [0, 1, 0x0fff, 0x1000, 0x1001, 0x1fff, 0x2000, 0x2001, 0x3000, 0x3fff, 0x4000, 0x4001, 0x7fff, 0x8000, 0x8001, 0xc000, 0xffff];
  const out = new Uint32Array(65536 * lows.length);
  let i = 0;
  for (let hi = 0; hi < 65536; hi++) for (const lo of lows) out[i++] = ((hi << 16) | lo) >>> 0;
  return out;
}

describe("SIMD conversion kernels", () => {
  it("simd-kernels-wasm.ts is simd-kernels.wat as wabt assembles it (npm run build:kernels)", async () => {
    assert.equal(readFileSync(KERNELS_MODULE, "utf8"), await renderKernelsModule());
  });

  it("BF16 → F16 matches the scalar conversion for all 65,536 inputs (subnormals, overflow, NaN, signs)", () => {
    const got = new Uint16Array(runKernel((k) => k.bf16ToF16, bytesOf(every16), 65536, 131072).buffer);
    assert.deepEqual(got, Uint16Array.from(every16, (b) => f32BitsToF16((b << 16) >>> 0)));
  });

  it("F16 and BF16 → F32 match the scalar decoders for all 65,536 inputs", () => {
    // Every NaN decodes to the one NaN a Float32Array stores.
    const f16 = new Uint32Array(Float32Array.from(every16, (h) => f16ToF32(h)).buffer);
    assert.deepEqual(new Uint32Array(runKernel((k) => k.f16ToF32, bytesOf(every16), 65536, 262144).buffer), f16);
    assert.deepEqual(new Uint32Array(runKernel((k) => k.bf16ToF32, bytesOf(every16), 65536, 262144).buffer), Uint32Array.from(every16, (b) => (b << 16) >>> 0));
  });

  it("F32 → F16 and F32 → BF16 round to nearest even as the scalar encoders do, at every rounding boundary", () => {
    const x = f32Patterns();
    const f16 = new Uint16Array(runKernel((k) => k.f32ToF16, bytesOf(x), x.length, x.length * 2).buffer);
    const bf16 = new Uint16Array(runKernel((k) => k.f32ToBf16, bytesOf(x), x.length, x.length * 2).buffer);
    for (let i = 0; i < x.length; i++) {
      if (f16[i] !== f32BitsToF16(x[i]!)) assert.fail(`f16 of 0x${x[i]!.toString(16)}: 0x${f16[i]!.toString(16)}, expected 0x${f32BitsToF16(x[i]!).toString(16)}`);
      if (bf16[i] !== f32BitsToBf16(x[i]!)) assert.fail(`bf16 of 0x${x[i]!.toString(16)}: 0x${bf16[i]!.toString(16)}, expected 0x${f32BitsToBf16(x[i]!).toString(16)}`);
    }
  });

  it("F64 → F32 rounds as a Float32Array store does", () => {
    const specials = [0, -0, 1, -1, 1 + 2 ** -24, 1 + 3 * 2 ** -24, 3.4028235677973366e38, 3.5e38, -1e-46, 1e-40, 2 ** -149, 2 ** -150, 1.5 * 2 ** -149, Infinity, -Infinity, Number.NaN, Math.PI];
    let s = 7;
    const random = Array.from({ length: 4096 }, () => {
      s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
      return ((s >>> 0) / 2 ** 32 - 0.5) * 2 ** (((s >>> 3) % 280) - 140);
    });
    const x = Float64Array.from([...specials, ...random]);
    assert.deepEqual(new Float32Array(runKernel((k) => k.f64ToF32, bytesOf(x), x.length, x.length * 4).buffer), Float32Array.from(x));
  });

  it("F32 → Q8_0 gives the scalar encoder's bytes: ties, NaN, ±Inf, -0, all-zero, subnormal and huge blocks", () => {
    const blocks: number[][] = [];
    blocks.push(Array.from({ length: 32 }, (_, i) => (i % 2 ? -1 : 1) * (i + 0.5)).map((v, i) => (i === 31 ? -127 : v))); // exact ties
    blocks.push(Array.from({ length: 32 }, (_, i) => i - 15.5));
    blocks.push(new Array<number>(32).fill(0));
    blocks.push(Array.from({ length: 32 }, (_, i) => (i === 0 ? -0 : i === 1 ? Number.NaN : i === 2 ? Infinity : i * 0.25)));
    blocks.push(Array.from({ length: 32 }, (_, i) => (i === 5 ? -Infinity : i)));
    blocks.push(new Array<number>(32).fill(Number.NaN));
    blocks.push(Array.from({ length: 32 }, (_, i) => (i - 16) * 1e-44));
    blocks.push(Array.from({ length: 32 }, (_, i) => (i - 16) * 2e37));
    let s = 11;
    for (let b = 0; b < 2000; b++) {
      const scale = 2 ** ((b % 60) - 40);
      blocks.push(Array.from({ length: 32 }, () => {
        s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
        return ((s >>> 0) / 2 ** 32 - 0.5) * scale;
      }));
      // Values at exact half-steps of the block's scale (the rounding ties of roundf).
      const d = Math.fround(Math.fround(127 * scale) / 127);
      blocks.push(Array.from({ length: 32 }, (_, j) => (j === 0 ? 127 * scale : ((j % 7) - 3 + 0.5) * d)));
    }
    const x = Float32Array.from(blocks.flat());
    assert.deepEqual(Buffer.from(runKernel((k) => k.f32ToQ8_0, bytesOf(x), x.length, (x.length / 32) * 34)), encodeQ8_0(x));
  });
});
