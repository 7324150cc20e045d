/**
 * ggml block formats → float32, as ggml's reference dequantize_row_* computes them
 * (ggml-quants.c): every product and sum rounded to float32, so the values are the ones
 * llama.cpp's get_rows yields for the same bytes. Pure, no I/O.
 */
import { GGML_TYPES } from "../../formats/ggml-types.js";
import { f16ToF32BitsLookup } from "../half.js";

/** Tensor types a GGUF can be exported from (ggml type names). */
export const DEQUANTIZABLE_TYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"] as const;
export type DequantizableType = (typeof DEQUANTIZABLE_TYPES)[number];

export const isDequantizable = (typeName: string): typeName is DequantizableType => (DEQUANTIZABLE_TYPES as readonly string[]).includes(typeName);

const fr = Math.fround;
const QK_K = 256;

let halfBits: Uint32Array | undefined;
let halfValues: Float32Array | undefined;

/** half bits → float32 value, through the 65,536-entry table. */
function halfTable(): Float32Array {
  if (!halfValues) {
    halfBits = f16ToF32BitsLookup();
    halfValues = new Float32Array(halfBits.buffer, halfBits.byteOffset, halfBits.length);
  }
  return halfValues;
}

/** A block format: decodes the block at byte `o` of `s` into `y` from element `at`. */
type BlockDecoder = (s: Uint8Array, o: number, y: Float32Array, at: number, h: Float32Array) => void;

const half = (s: Uint8Array, o: number, h: Float32Array): number => h[s[o]! | (s[o + 1]! << 8)]!;

function q8_0(s: Uint8Array, o: number, y: Float32Array, at: number, h: Float32Array): void {
  const d = half(s, o, h);
  for (let j = 0; j < 32; j++) y[at + j] = fr(((s[o + 2 + j]! << 24) >> 24) * d);
}

function q4_0(s: Uint8Array, o: number, y: Float32Array, at: number, h: Float32Array): void {
  const d = half(s, o, h);
  for (let j = 0; j < 16; j++) {
    const b = s[o + 2 + j]!;
    y[at + j] = fr(((b & 0x0f) - 8) * d);
    y[at + j + 16] = fr(((b >> 4) - 8) * d);
  }
}

function q4_1(s: Uint8Array, o: number, y: Float32Array, at: number, h: Float32Array): void {
  const d = half(s, o, h);
  const m = half(s, o + 2, h);
  for (let j = 0; j < 16; j++) {
    const b = s[o + 4 + j]!;
    y[at + j] = fr(fr((b & 0x0f) * d) + m);
    y[at + j + 16] = fr(fr((b >> 4) * d) + m);
  }
}

/** Q5_0 / Q5_1: 4 low bits in qs, the fifth bit of value j in bit j of the 32-bit qh. */
function q5(s: Uint8Array, o: number, y: Float32Array, at: number, d: number, m: number | undefined): void {
  const qh = (s[o]! | (s[o + 1]! << 8) | (s[o + 2]! << 16) | (s[o + 3]! << 24)) >>> 0;
  for (let j = 0; j < 16; j++) {
    const b = s[o + 4 + j]!;
    const x0 = (b & 0x0f) | (((qh >>> j) << 4) & 0x10);
    const x1 = (b >> 4) | ((qh >>> (j + 12)) & 0x10);
    if (m === undefined) {
      y[at + j] = fr((x0 - 16) * d);
      y[at + j + 16] = fr((x1 - 16) * d);
    } else {
      y[at + j] = fr(fr(x0 * d) + m);
      y[at + j + 16] = fr(fr(x1 * d) + m);
    }
  }
}

const q5_0: BlockDecoder = (s, o, y, at, h) => q5(s, o + 2, y, at, half(s, o, h), undefined);
const q5_1: BlockDecoder = (s, o, y, at, h) => q5(s, o + 4, y, at, half(s, o, h), half(s, o + 2, h));

function q2_K(s: Uint8Array, o: number, y: Float32Array, at: number, h: Float32Array): void {
  const d = half(s, o + 80, h);
  const min = half(s, o + 82, h);
  let q = o + 16;
  let is = 0;
  for (let n = 0; n < QK_K; n += 128, q += 32) {
    for (let shift = 0; shift < 8; shift += 2) {
      for (let half16 = 0; half16 < 32; half16 += 16) {
        const sc = s[o + is++]!;
        const dl = fr(d * (sc & 0x0f));
        const ml = fr(min * (sc >> 4));
        for (let l = 0; l < 16; l++) y[at++] = fr(fr(dl * ((s[q + half16 + l]! >> shift) & 3)) - ml);
      }
    }
  }
}

function q3_K(s: Uint8Array, o: number, y: Float32Array, at: number, h: Float32Array): void {
  const dAll = half(s, o + 108, h);
  const hm = o;
  let q = o + 32;
  const scales = q3Scales(s, o + 96);
  let is = 0;
  let m = 1;
  for (let n = 0; n < QK_K; n += 128, q += 32) {
    for (let shift = 0; shift < 8; shift += 2, m <<= 1) {
      for (let half16 = 0; half16 < 32; half16 += 16) {
        const dl = fr(dAll * (scales[is++]! - 32));
        for (let l = 0; l < 16; l++) y[at++] = fr(dl * (((s[q + half16 + l]! >> shift) & 3) - (s[hm + half16 + l]! & m ? 0 : 4)));
      }
    }
  }
}

/** Q3_K's sixteen 6-bit scales: low 4 bits in bytes 0–7 (two per byte), high 2 bits in bytes 8–11. */
function q3Scales(s: Uint8Array, o: number): Int8Array {
  const out = new Int8Array(16);
  for (let i = 0; i < 16; i++) {
    const low = i < 8 ? s[o + i]! & 0x0f : s[o + i - 8]! >> 4;
    const high = (s[o + 8 + (i & 3)]! >> (2 * (i >> 2))) & 3;
    out[i] = low | (high << 4);
  }
  return out;
}

/** Q4_K / Q5_K: scale and min of sub-block j (6 bits each, packed into 12 bytes). */
function scaleMin(s: Uint8Array, o: number, j: number): [number, number] {
  if (j < 4) return [s[o + j]! & 63, s[o + j + 4]! & 63];
  return [(s[o + j + 4]! & 0x0f) | ((s[o + j - 4]! >> 6) << 4), (s[o + j + 4]! >> 4) | ((s[o + j]! >> 6) << 4)];
}

/** Q4_K (no high bits) and Q5_K (a fifth bit per value in qh). */
function q45_K(s: Uint8Array, o: number, y: Float32Array, at: number, h: Float32Array, qh: number | undefined): void {
  const d = half(s, o, h);
  const min = half(s, o + 2, h);
  let ql = qh === undefined ? o + 16 : o + 48;
  let u = 1;
  for (let j = 0; j < 8; j += 2, ql += 32, u <<= 2) {
    for (let sub = 0; sub < 2; sub++) {
      const [sc, mn] = scaleMin(s, o + 4, j + sub);
      const d1 = fr(d * sc);
      const m1 = fr(min * mn);
      const bit = u << sub;
      for (let l = 0; l < 32; l++) {
        const low = sub === 0 ? s[ql + l]! & 0x0f : s[ql + l]! >> 4;
        const high = qh !== undefined && s[qh + l]! & bit ? 16 : 0;
        y[at++] = fr(fr(d1 * (low + high)) - m1);
      }
    }
  }
}

const q4_K: BlockDecoder = (s, o, y, at, h) => q45_K(s, o, y, at, h, undefined);
const q5_K: BlockDecoder = (s, o, y, at, h) => q45_K(s, o, y, at, h, o + 16);

function q6_K(s: Uint8Array, o: number, y: Float32Array, at: number, h: Float32Array): void {
  const d = half(s, o + 208, h);
  const scale = new Float32Array(16);
  for (let k = 0; k < 16; k++) scale[k] = fr(d * ((s[o + 192 + k]! << 24) >> 24));
  let ql = o;
  let qh = o + 128;
  for (let n = 0; n < 2; n++, at += 128, ql += 64, qh += 32) {
    for (let l = 0; l < 32; l++) {
      const sc = n * 8 + (l >> 4);
      const hb = s[qh + l]!;
      const lo = s[ql + l]!;
      const lo32 = s[ql + l + 32]!;
      y[at + l] = fr(scale[sc]! * (((lo & 0x0f) | ((hb & 3) << 4)) - 32));
      y[at + l + 32] = fr(scale[sc + 2]! * (((lo32 & 0x0f) | (((hb >> 2) & 3) << 4)) - 32));
      y[at + l + 64] = fr(scale[sc + 4]! * (((lo >> 4) | (((hb >> 4) & 3) << 4)) - 32));
      y[at + l + 96] = fr(scale[sc + 6]! * (((lo32 >> 4) | (((hb >> 6) & 3) << 4)) - 32));
    }
  }
}

const BLOCK_DECODERS: Partial<Record<DequantizableType, BlockDecoder>> = { Q8_0: q8_0, Q4_0: q4_0, Q4_1: q4_1, Q5_0: q5_0, Q5_1: q5_1, Q2_K: q2_K, Q3_K: q3_K, Q4_K: q4_K, Q5_K: q5_K, Q6_K: q6_K };

const TYPE_BY_NAME = new Map([...GGML_TYPES.values()].map((t) => [t.name, t]));

/** Elements per block and bytes per block of a ggml type. */
export function blockLayout(type: DequantizableType): { blockSize: number; typeSize: number } {
  return TYPE_BY_NAME.get(type)!;
}

/** `n` 16-bit values at the start of `src` (copied when not 2-byte aligned). */
function u16(src: Uint8Array, n: number): Uint16Array {
  if (src.byteOffset % 2 === 0) return new Uint16Array(src.buffer, src.byteOffset, n);
  return new Uint16Array(src.slice(0, 2 * n).buffer);
}

/**
 * Decodes `n` values of `type` (a whole number of blocks) from byte 0 of `src` into `out` from
 * element `at`.
 */
export function dequantize(type: DequantizableType, src: Uint8Array, n: number, out: Float32Array, at = 0): void {
  const { blockSize, typeSize } = blockLayout(type);
  if (n % blockSize !== 0) throw new Error(`${type} needs a multiple of ${blockSize} values, got ${n}`);
  if (src.length < (n / blockSize) * typeSize) throw new Error(`${type}: ${n} values need ${(n / blockSize) * typeSize} bytes, got ${src.length}`);
  const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  switch (type) {
    case "F32":
      // Bit copy: NaN payloads stay as they are.
      outBits.set(new Uint32Array(src.buffer.slice(src.byteOffset, src.byteOffset + n * 4)), at);
      return;
    case "F16": {
      const table = f16ToF32BitsLookup();
      const halves = u16(src, n);
      for (let i = 0; i < n; i++) outBits[at + i] = table[halves[i]!]!;
      return;
    }
    case "BF16": {
      const halves = u16(src, n);
      for (let i = 0; i < n; i++) outBits[at + i] = halves[i]! << 16;
      return;
    }
  }
  const decode = BLOCK_DECODERS[type]!;
  const h = halfTable();
  for (let b = 0, o = 0; b < n; b += blockSize, o += typeSize) decode(src, o, out, at + b, h);
}
