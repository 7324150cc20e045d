/** IEEE half and bfloat16 conversions, bit-exact with ggml (round to nearest even, NaN stays NaN). */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 bits → half bits, round to nearest even (what F16C's vcvtps2ph does for ggml). */
export function f32BitsToF16(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 112; // rebias 127 → 15
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half: value = full × 2^(e-14) units of 2^-24.
    if (e < -10) return sign;
    const full = mant | 0x800000;
    const shift = 14 - e;
    let v = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && v & 1)) v++;
    return sign | v;
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return h;
}

export function f32ToF16(x: number): number {
  f32[0] = x;
  return f32BitsToF16(u32[0]!);
}

export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** float32 bits → bfloat16 bits, as ggml_compute_fp32_to_bf16. */
export function f32BitsToBf16(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 64) & 0xffff; // quiet NaN
  return ((bits + (0x7fff + ((bits >>> 16) & 1))) >>> 16) & 0xffff;
}

let f16ToF32BitsTable: Uint32Array | undefined;

/** half bits → float32 bits for every one of the 65,536 inputs (NaN as a Float32Array stores it); the exporter's dequantisers read it. */
export function f16ToF32BitsLookup(): Uint32Array {
  if (!f16ToF32BitsTable) {
    const values = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) values[h] = f16ToF32(h);
    f16ToF32BitsTable = new Uint32Array(values.buffer);
  }
  return f16ToF32BitsTable;
}

/** Decodes safetensors tensor bytes of a float dtype to float32. */
export function decodeToF32(data: Buffer, dtype: string): Float32Array {
  switch (dtype) {
    case "F32": {
      const out = new Float32Array(data.length / 4);
      new Uint8Array(out.buffer).set(data);
      return out;
    }
    case "F16": {
      const src = u16View(data);
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = f16ToF32(src[i]!);
      return out;
    }
    case "BF16": {
      const src = u16View(data);
      const out = new Float32Array(src.length);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
      return out;
    }
    case "F64": {
      const n = data.length / 8;
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = data.readDoubleLE(i * 8);
      return out;
    }
    default:
      throw new Error(`dtype ${dtype} cannot be converted to floating point`);
  }
}

/** A Uint16Array over a Buffer's bytes (copied when the Buffer is not 2-byte aligned). */
export function u16View(data: Buffer): Uint16Array {
  if (data.byteOffset % 2 === 0) return new Uint16Array(data.buffer, data.byteOffset, data.length / 2);
  return new Uint16Array(Uint8Array.from(data).buffer);
}
