/**
 * The converter's per-element work on a block of whole rows: source dtype bytes → output type
 * bytes, with llama's q/k RoPE row order applied on the way. Called by BlockRunner, in the
 * encode threads or on the calling thread; pure, no I/O.
 */
import { bf16ToF16Lookup, f16ToF32BitsLookup } from "./half.js";
import type { Affine } from "./architectures/types.js";
import { encodedBytes, type OutputType, writeEncoded } from "./quantize.js";

export const SOURCE_DTYPE_BYTES: Readonly<Record<string, number>> = { F64: 8, F32: 4, F16: 2, BF16: 2 };

/** A block of rows to encode, from offset 0 of `src` to offset 0 of `out` (buffers a multiple of 8 bytes long). */
export interface EncodeJob {
  srcDtype: string;
  outType: OutputType;
  src: ArrayBuffer;
  out: ArrayBuffer;
  rows: number;
  cols: number;
  /** Rows per attention head when the rows are permuted from HF rotate-half order, else 0. */
  headRows: number;
  /** Applied to every value after decoding (TensorPlan.affine). */
  affine?: Affine;
}

/** True when the output bytes are the source bytes (only the row order may change). */
export function isByteCopy(srcDtype: string, outType: OutputType): boolean {
  return (srcDtype === "F16" && outType === "f16") || (srcDtype === "BF16" && outType === "bf16") || (srcDtype === "F32" && outType === "f32");
}

/**
 * The source row that output row `r` comes from: within each head, HF keeps the two rotary
 * halves apart (rows i and half+i), llama.cpp interleaves them (rows 2i and 2i+1).
 */
export function sourceRow(r: number, headRows: number): number {
  if (!headRows) return r;
  const inHead = r % headRows;
  return r - inHead + (inHead & 1) * (headRows >> 1) + (inHead >> 1);
}

/** Copies whole rows from `src` to `out` in llama.cpp's order (byte-copy tensors with permuted rows). */
export function permuteRowBytes(src: Buffer, out: Buffer, rows: number, rowBytes: number, headRows: number): void {
  for (let r = 0; r < rows; r++) {
    const s = sourceRow(r, headRows) * rowBytes;
    src.copy(out, r * rowBytes, s, s + rowBytes);
  }
}

const PIECE = 4096; // values decoded to float32 at a time: a multiple of the 32-value quant block

/** Encodes `job.rows` rows of `job.cols` values from `job.src` into `job.out`. */
export function encodeRows(job: EncodeJob): void {
  const { srcDtype, outType, rows, cols, headRows, affine } = job;
  if (srcDtype === "BF16" && outType === "f16" && !affine) return bf16RowsToF16(job);
  const out = new Uint8Array(job.out);
  const outRowBytes = encodedBytes(outType, cols);
  const piece = Math.min(PIECE, cols);
  const x = new Float32Array(piece);
  const bits = new Uint32Array(x.buffer);
  const decode = decoder(srcDtype, job.src, x, bits);
  for (let r = 0; r < rows; r++) {
    const s = sourceRow(r, headRows) * cols;
    for (let c = 0; c < cols; c += piece) {
      const n = Math.min(piece, cols - c);
      decode(s + c, n);
      if (affine) for (let i = 0; i < n; i++) x[i] = (x[i]! + affine.shift) * affine.scale;
      writeEncoded(x, bits, n, outType, out, r * outRowBytes + encodedBytes(outType, c));
    }
  }
}

/** A function that decodes `n` source values from element `at` into `x`/`bits` as float32. */
function decoder(dtype: string, src: ArrayBuffer, x: Float32Array, bits: Uint32Array): (at: number, n: number) => void {
  switch (dtype) {
    case "BF16": {
      const s = new Uint16Array(src);
      return (at, n) => { for (let i = 0; i < n; i++) bits[i] = s[at + i]! << 16; };
    }
    case "F16": {
      const s = new Uint16Array(src);
      const table = f16ToF32BitsLookup();
      return (at, n) => { for (let i = 0; i < n; i++) bits[i] = table[s[at + i]!]!; };
    }
    case "F32": {
      const s = new Uint32Array(src);
      return (at, n) => bits.set(s.subarray(at, at + n));
    }
    case "F64": {
      const s = new Float64Array(src);
      return (at, n) => { for (let i = 0; i < n; i++) x[i] = s[at + i]!; };
    }
    default:
      throw new Error(`dtype ${dtype} cannot be converted to floating point`);
  }
}

/** BF16 → F16, the bulk of converting a BF16 checkpoint: one table lookup per value, two per word. */
function bf16RowsToF16({ src, out, rows, cols, headRows }: EncodeJob): void {
  const table = bf16ToF16Lookup();
  if (cols % 2 === 0) {
    const s = new Uint32Array(src);
    const o = new Uint32Array(out);
    const words = cols >> 1;
    for (let r = 0; r < rows; r++) {
      const from = sourceRow(r, headRows) * words;
      const to = r * words;
      for (let i = 0; i < words; i++) {
        const w = s[from + i]!;
        o[to + i] = table[w & 0xffff]! | (table[w >>> 16]! << 16);
      }
    }
    return;
  }
  const s = new Uint16Array(src);
  const o = new Uint16Array(out);
  for (let r = 0; r < rows; r++) {
    const from = sourceRow(r, headRows) * cols;
    for (let i = 0; i < cols; i++) o[r * cols + i] = table[s[from + i]!]!;
  }
}
