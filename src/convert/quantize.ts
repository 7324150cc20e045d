import { GGML_TYPE } from "../formats/ggml-types.js";
import { bf16ToF16Lookup, f32BitsToBf16, f32BitsToF16, f32ToF16, u16View } from "./half.js";

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

function bitsOf(x: Float32Array): Uint32Array {
  return new Uint32Array(x.buffer, x.byteOffset, x.length);
}

// Typed-array views write in host byte order; GGUF is little-endian.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error("Shimmy's converter needs a little-endian host");

export function encodeF16(x: Float32Array): Buffer {
  const bits = bitsOf(x);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f32BitsToF16(bits[i]!);
  return Buffer.from(out.buffer);
}

export function encodeBf16(x: Float32Array): Buffer {
  const bits = bitsOf(x);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f32BitsToBf16(bits[i]!);
  return Buffer.from(out.buffer);
}

export function encodeF32(x: Float32Array): Buffer {
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
}

/**
 * Q8_0 as ggml's quantize_row_q8_0_ref: per 32 values, d = amax/127 (stored as f16),
 * q = roundf(x · (1/d)), all arithmetic in float32.
 */
export function encodeQ8_0(x: Float32Array): Buffer {
  if (x.length % QK !== 0) throw new Error(`Q8_0 needs a multiple of ${QK} values, got ${x.length}`);
  const blocks = x.length / QK;
  const out = Buffer.allocUnsafe(blocks * 34);
  const q = new Int8Array(out.buffer, out.byteOffset, out.length);
  const fr = Math.fround;
  for (let b = 0; b < blocks; b++) {
    const base = b * QK;
    let amax = 0;
    for (let j = 0; j < QK; j++) {
      const v = x[base + j]!;
      const a = v < 0 ? -v : v;
      if (a > amax) amax = a;
    }
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    const o = b * 34;
    const h = f32ToF16(d);
    out[o] = h & 0xff;
    out[o + 1] = h >>> 8;
    for (let j = 0; j < QK; j++) {
      // roundf for |v| ≤ 127: v ± 0.5 is exact in double precision, then truncate.
      const v = fr(x[base + j]! * id);
      q[o + 2 + j] = v < 0 ? -((0.5 - v) | 0) : (v + 0.5) | 0;
    }
  }
  return out;
}

/**
 * Q4_0 as ggml's quantize_row_q4_0_ref: d = max/-8 where max is the value of largest magnitude,
 * q = min(15, trunc(x/d + 8.5)), two 4-bit values per byte (j and j+16).
 */
export function encodeQ4_0(x: Float32Array): Buffer {
  if (x.length % QK !== 0) throw new Error(`Q4_0 needs a multiple of ${QK} values, got ${x.length}`);
  const blocks = x.length / QK;
  const out = Buffer.allocUnsafe(blocks * 18);
  const fr = Math.fround;
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK; j++) {
      const v = x[b * QK + j]!;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = fr(max / -8);
    const id = d ? fr(1 / d) : 0;
    const o = b * 18;
    out.writeUInt16LE(f32ToF16(d), o);
    for (let j = 0; j < QK / 2; j++) {
      const x0 = fr(x[b * QK + j]! * id);
      const x1 = fr(x[b * QK + QK / 2 + j]! * id);
      const q0 = Math.min(15, Math.trunc(fr(x0 + 8.5)));
      const q1 = Math.min(15, Math.trunc(fr(x1 + 8.5)));
      out[o + 2 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}

export function encode(x: Float32Array, type: OutputType): Buffer {
  switch (type) {
    case "f32": return encodeF32(x);
    case "f16": return encodeF16(x);
    case "bf16": return encodeBf16(x);
    case "q8_0": return encodeQ8_0(x);
    case "q4_0": return encodeQ4_0(x);
  }
}

/**
 * Conversions that need no float32 round trip (the bulk of a BF16/F16 checkpoint going to f16,
 * bf16 or f32): returns undefined when there is no direct path.
 */
export function encodeDirect(data: Buffer, dtype: string, type: OutputType): Buffer | undefined {
  if ((dtype === "F16" && type === "f16") || (dtype === "BF16" && type === "bf16") || (dtype === "F32" && type === "f32")) return data;
  if (dtype === "BF16" && type === "f16") {
    const table = bf16ToF16Lookup();
    const src = u16View(data);
    const out = new Uint16Array(src.length);
    for (let i = 0; i < src.length; i++) out[i] = table[src[i]!]!;
    return Buffer.from(out.buffer);
  }
  return undefined;
}
