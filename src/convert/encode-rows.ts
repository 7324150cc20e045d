/**
 * The converter's per-element work on a block of whole rows: source dtype bytes → output type
 * bytes, with llama's q/k RoPE row order applied on the way. Called by BlockRunner, in the
 * encode threads or on the calling thread, on bytes already in the SIMD kernels' memory; no I/O.
 */
import type { Affine } from "./architectures/types.js";
import { encodedBytes, type OutputType, writeQ4_0 } from "./quantize.js";
import type { Kernel, SimdKernels } from "./simd-kernels.js";

export const SOURCE_DTYPE_BYTES: Readonly<Record<string, number>> = { F64: 8, F32: 4, F16: 2, BF16: 2 };

/** Values decoded to float32 at a time: a multiple of the 32-value quant block. */
export const PIECE = 4096;

/** A block of rows to encode, at byte offsets of the kernels' memory (each region followed by KERNEL_SLACK bytes of room). */
export interface EncodeJob {
  srcDtype: string;
  outType: OutputType;
  /** Source bytes, encoded output, and room for PIECE float32 values. */
  srcAt: number;
  outAt: number;
  scratchAt: number;
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

/** Encodes `job.rows` rows of `job.cols` values from `job.srcAt` to `job.outAt`. */
export function encodeRows(k: SimdKernels, job: EncodeJob): void {
  const { srcDtype, outType, rows, cols, headRows, affine } = job;
  const srcRowBytes = cols * SOURCE_DTYPE_BYTES[srcDtype]!;
  const outRowBytes = encodedBytes(outType, cols);
  if ((outType === "q8_0" || outType === "q4_0") && cols % 32 !== 0) throw new Error(`${outType} needs a multiple of 32 values per row, got ${cols}`);
  // The bulk of converting a BF16 checkpoint: one kernel per row, no float32 step.
  if (srcDtype === "BF16" && outType === "f16" && !affine) {
    for (let r = 0; r < rows; r++) k.bf16ToF16(job.srcAt + sourceRow(r, headRows) * srcRowBytes, job.outAt + r * outRowBytes, cols);
    return;
  }
  const decode = decoder(k, srcDtype);
  const encode = encoder(k, outType);
  const piece = Math.min(PIECE, cols);
  for (let r = 0; r < rows; r++) {
    const row = job.srcAt + sourceRow(r, headRows) * srcRowBytes;
    for (let c = 0; c < cols; c += piece) {
      const n = Math.min(piece, cols - c);
      // float32 sources are encoded where they lie (an affine changes them in place: each source row is read once).
      let x = row + c * 4;
      if (decode) {
        decode(row + c * SOURCE_DTYPE_BYTES[srcDtype]!, job.scratchAt, n);
        x = job.scratchAt;
      }
      if (affine) {
        const v = new Float32Array(k.memory, x, n);
        for (let i = 0; i < n; i++) v[i] = (v[i]! + affine.shift) * affine.scale;
      }
      encode(x, job.outAt + r * outRowBytes + encodedBytes(outType, c), n);
    }
  }
}

/** The kernel that decodes a source dtype to float32, or undefined for float32 itself. */
function decoder(k: SimdKernels, dtype: string): Kernel | undefined {
  switch (dtype) {
    case "F32": return undefined;
    case "BF16": return k.bf16ToF32;
    case "F16": return k.f16ToF32;
    case "F64": return k.f64ToF32;
    default: throw new Error(`dtype ${dtype} cannot be converted to floating point`);
  }
}

/** Encodes `n` float32 values at byte `src` of the memory as `type` at byte `dst`. */
function encoder(k: SimdKernels, type: OutputType): Kernel {
  switch (type) {
    case "f32": return (src, dst, n) => void k.bytes.copyWithin(dst, src, src + n * 4);
    case "f16": return k.f32ToF16;
    case "bf16": return k.f32ToBf16;
    case "q8_0": return k.f32ToQ8_0;
    // Q4_0 is rarely asked of the converter: the scalar reference encoder does it.
    case "q4_0": return (src, dst, n) => writeQ4_0(new Float32Array(k.memory, src, n), n, k.bytes, dst);
  }
}
