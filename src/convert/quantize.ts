import { GGML_TYPE } from "../formats/ggml-types.js";
import { f32BitsToBf16, f32BitsToF16, f32ToF16 } from "./half.js";

export type OutputType = "f32" | "f16" | "bf16" | "q8_0" | "q4_0";
export const OUTPUT_TYPES: readonly OutputType[] = ["f32", "f16", "bf16", "q8_0", "q4_0"];

export const GGML_TYPE_OF: Record<OutputType, number> = {
  f32: GGML_TYPE.F32,
  f16: GGML_TYPE.F16,
  bf16: GGML_TYPE.BF16,
  q8_0: GGML_TYPE.Q8_0,
  q4_0: GGML_TYPE.Q4_0,
};

/** llama_ftype for general.file_type. */
export const FILE_TYPE_OF: Record<OutputType, number> = { f32: 0, f16: 1, q4_0: 2, q8_0: 7, bf16: 32 };

const QK = 32;

// Typed-array views write in host byte order; GGUF is little-endian.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error("Shimmy's converter needs a little-endian host");

/** Bytes that `n` values (a multiple of 32 for the block types) take in `type`. */
export function encodedBytes(type: OutputType, n: number): number {
  switch (type) {
    case "f32": return n * 4;
    case "f16": case "bf16": return n * 2;
    case "q8_0": return (n / QK) * 34;
    case "q4_0": return (n / QK) * 18;
  }
}

/** f32 bits → half, `n` values from `bits` to `out` (2-byte units) starting at `o`. */
export function writeF16(bits: Uint32Array, n: number, out: Uint16Array, o: number): void {
  for (let i = 0; i < n; i++) out[o + i] = f32BitsToF16(bits[i]!);
}

export function writeBf16(bits: Uint32Array, n: number, out: Uint16Array, o: number): void {
  for (let i = 0; i < n; i++) out[o + i] = f32BitsToBf16(bits[i]!);
}

/**
 * Q8_0 as ggml's quantize_row_q8_0_ref: per 32 values, d = amax/127 (stored as f16),
 * q = roundf(x · (1/d)), all arithmetic in float32. Writes n/32 blocks at byte `o` of `out`.
 */
export function writeQ8_0(x: Float32Array, bits: Uint32Array, n: number, out: Uint8Array, o: number): void {
  const q = new Int8Array(out.buffer, out.byteOffset, out.length);
  const fr = Math.fround;
  for (let base = 0; base < n; base += QK, o += 34) {
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[base + j]!));
    // Math.max propagates NaN; the reference skips NaN values (they quantize to 0).
    if (amax !== amax) amax = maxAbsSkippingNaN(x, base);
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    const h = f32ToF16(d);
    out[o] = h & 0xff;
    out[o + 1] = h >>> 8;
    for (let j = 0; j < QK; j++) {
      // roundf, halves away from zero: v ± 0.5 is exact in double precision, then truncate.
      // The sign comes from x's sign bit (id ≥ 0) so that random signs cost no branch.
      const v = fr(x[base + j]! * id);
      q[o + 2 + j] = (v + 0.5 - (bits[base + j]! >>> 31)) | 0;
    }
  }
}

function maxAbsSkippingNaN(x: Float32Array, base: number): number {
  let amax = 0;
  for (let j = 0; j < QK; j++) {
    const a = Math.abs(x[base + j]!);
    if (a > amax) amax = a;
  }
  return amax;
}

/**
 * Q4_0 as ggml's quantize_row_q4_0_ref: d = max/-8 where max is the value of largest magnitude,
 * q = min(15, trunc(x/d + 8.5)), two 4-bit values per byte (j and j+16).
 */
export function writeQ4_0(x: Float32Array, n: number, out: Uint8Array, o: number): void {
  const fr = Math.fround;
  for (let base = 0; base < n; base += QK, o += 18) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK; j++) {
      const v = x[base + j]!;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = fr(max / -8);
    const id = d ? fr(1 / d) : 0;
    const h = f32ToF16(d);
    out[o] = h & 0xff;
    out[o + 1] = h >>> 8;
    for (let j = 0; j < QK / 2; j++) {
      const x0 = fr(x[base + j]! * id);
      const x1 = fr(x[base + QK / 2 + j]! * id);
      const q0 = Math.min(15, Math.trunc(fr(x0 + 8.5)));
      const q1 = Math.min(15, Math.trunc(fr(x1 + 8.5)));
      out[o + 2 + j] = q0 | (q1 << 4);
    }
  }
}

/** Encodes `n` float32 values (`x`, with `bits` its bit view) as `type` at byte `o` of `out`. */
export function writeEncoded(x: Float32Array, bits: Uint32Array, n: number, type: OutputType, out: Uint8Array, o: number): void {
  if ((type === "q8_0" || type === "q4_0") && n % QK !== 0) throw new Error(`${type} needs a multiple of ${QK} values, got ${n}`);
  switch (type) {
    case "f32": new Uint32Array(out.buffer, out.byteOffset + o, n).set(bits.subarray(0, n)); return;
    case "f16": writeF16(bits, n, new Uint16Array(out.buffer, out.byteOffset + o, n), 0); return;
    case "bf16": writeBf16(bits, n, new Uint16Array(out.buffer, out.byteOffset + o, n), 0); return;
    case "q8_0": writeQ8_0(x, bits, n, out, o); return;
    case "q4_0": writeQ4_0(x, n, out, o); return;
  }
}

/** Encodes a whole float32 array as `type` into a new buffer. */
export function encode(x: Float32Array, type: OutputType): Buffer {
  if ((type === "q8_0" || type === "q4_0") && x.length % QK !== 0) throw new Error(`${type === "q8_0" ? "Q8_0" : "Q4_0"} needs a multiple of ${QK} values, got ${x.length}`);
  const out = Buffer.alloc(encodedBytes(type, x.length));
  writeEncoded(x, new Uint32Array(x.buffer, x.byteOffset, x.length), x.length, type, out, 0);
  return out;
}

export const encodeQ8_0 = (x: Float32Array): Buffer => encode(x, "q8_0");
export const encodeQ4_0 = (x: Float32Array): Buffer => encode(x, "q4_0");
