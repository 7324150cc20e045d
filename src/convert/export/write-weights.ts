/**
 * Streams GGUF tensors into SafeTensors shards: each tensor is read in blocks of whole rows
 * (whole attention heads where q/k rows are reordered), dequantised to float32, put back in HF's
 * rotate-half row order and encoded as the shard's dtype, then written at its offset. Memory is
 * a few blocks, whatever the model size.
 */
import { closeSync, openSync, readSync, writeSync } from "node:fs";
import type { GgufTensorInfo } from "../../formats/gguf.js";
import { encodeSafetensorsHeader } from "../../formats/safetensors-writer.js";
import { sourceRow } from "../encode-rows.js";
import { writeBf16, writeF16 } from "../quantize.js";
import { ConvertError } from "../errors.js";
import { blockLayout, type DequantizableType, dequantize } from "./dequantize.js";
import type { TensorProgress } from "../write-tensors.js";

export type WeightDtype = "F32" | "F16" | "BF16";
const DTYPE_BYTES: Record<WeightDtype, number> = { F32: 4, F16: 2, BF16: 2 };

export interface ExportTensor {
  /** HF name. */
  name: string;
  source: GgufTensorInfo;
  sourceType: DequantizableType;
  dtype: WeightDtype;
  /** HF (outermost-first) shape. */
  shape: number[];
  /** Heads whose rows go back from llama.cpp's interleaved RoPE order to HF's rotate-half order. */
  permuteHeads?: number;
}

export interface Shard {
  file: string;
  tensors: ExportTensor[];
}

/** Progress of the weights, shaped as the HF → GGUF direction reports it (one progress bar for both). */
export type WeightsProgress = TensorProgress;

/** Source bytes per block of rows. */
const BLOCK_BYTES = 1 << 20;

export const tensorBytes = (t: ExportTensor): number => t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];

/**
 * Splits the tensors, in order, into shards of at most `maxShardBytes` of weights (a tensor larger
 * than that gets a shard of its own), named as transformers names them.
 */
export function planShards(tensors: readonly ExportTensor[], maxShardBytes: number): Shard[] {
  const groups: ExportTensor[][] = [];
  let size = 0;
  for (const t of tensors) {
    const bytes = tensorBytes(t);
    if (groups.length === 0 || (size + bytes > maxShardBytes && size > 0)) {
      groups.push([]);
      size = 0;
    }
    groups.at(-1)!.push(t);
    size += bytes;
  }
  if (groups.length <= 1) return [{ file: "model.safetensors", tensors: groups[0] ?? [] }];
  const pad = (i: number) => String(i).padStart(5, "0");
  return groups.map((g, i) => ({ file: `model-${pad(i + 1)}-of-${pad(groups.length)}.safetensors`, tensors: g }));
}

function readFully(fd: number, buf: Buffer, length: number, position: number, path: string): void {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) throw new ConvertError(path, `truncated: tensor data ends before byte ${position + length}`);
    done += n;
  }
}

/** Writes every shard under `dir`; `dataOffset` is where the GGUF's tensor data starts. */
export function writeShards(ggufPath: string, dataOffset: number, dir: string, shards: readonly Shard[], onProgress?: (p: WeightsProgress) => void): number {
  const total = shards.reduce((n, s) => n + s.tensors.length, 0);
  const bytesTotal = shards.reduce((n, s) => n + s.tensors.reduce((m, t) => m + t.source.bytes, 0), 0);
  let index = 0;
  let bytesRead = 0;
  const input = openSync(ggufPath, "r");
  try {
    for (const shard of shards) {
      const { head, offsets } = encodeSafetensorsHeader(shard.tensors, { format: "pt" });
      const out = openSync(`${dir}/${shard.file}`, "w");
      try {
        writeSync(out, head, 0, head.length, 0);
        shard.tensors.forEach((t, i) => {
          writeTensor(input, ggufPath, dataOffset, out, offsets[i]!, t);
          bytesRead += t.source.bytes;
          onProgress?.({ tensor: t.name, index: ++index, total, bytesRead, bytesTotal });
        });
      } finally {
        closeSync(out);
      }
    }
  } finally {
    closeSync(input);
  }
  return bytesRead;
}

function writeTensor(input: number, ggufPath: string, dataOffset: number, out: number, outAt: number, t: ExportTensor): void {
  const elements = t.source.elements;
  // Rows as HF sees them for reordered tensors (a bias is rows of one value); else GGUF rows.
  const cols = t.permuteHeads ? elements / t.shape[0]! : t.source.dims[0]!;
  const rows = elements / cols;
  const { blockSize, typeSize } = blockLayout(t.sourceType);
  if (cols % blockSize !== 0) throw new ConvertError(ggufPath, `tensor "${t.source.name}": rows of ${cols} values do not hold whole ${t.sourceType} blocks`);
  const srcRowBytes = (cols / blockSize) * typeSize;
  const outRowBytes = cols * DTYPE_BYTES[t.dtype];
  const headRows = t.permuteHeads ? rows / t.permuteHeads : 0;
  const group = headRows || 1;
  const perBlock = Math.max(group, Math.floor(BLOCK_BYTES / (Math.max(srcRowBytes, cols * 4) * group)) * group);
  const copy = t.sourceType === t.dtype;

  const src = Buffer.alloc(Math.min(rows, perBlock) * srcRowBytes);
  const x = new Float32Array(copy ? 0 : Math.min(rows, perBlock) * cols);
  const bits = new Uint32Array(x.buffer);
  const encoded = Buffer.alloc(Math.min(rows, perBlock) * outRowBytes);
  const srcAt = dataOffset + t.source.offset;
  for (let r = 0; r < rows; r += perBlock) {
    const n = Math.min(perBlock, rows - r);
    readFully(input, src, n * srcRowBytes, srcAt + r * srcRowBytes, ggufPath);
    // GGUF row i of the block holds HF row sourceRow(i): blocks start on head boundaries.
    if (copy) {
      for (let i = 0; i < n; i++) src.copy(encoded, sourceRow(i, headRows) * outRowBytes, i * srcRowBytes, (i + 1) * srcRowBytes);
    } else {
      for (let i = 0; i < n; i++) dequantize(t.sourceType, src.subarray(i * srcRowBytes, (i + 1) * srcRowBytes), cols, x, sourceRow(i, headRows) * cols);
      const values = n * cols;
      if (t.dtype === "F32") new Uint32Array(encoded.buffer, encoded.byteOffset, values).set(bits.subarray(0, values));
      else (t.dtype === "F16" ? writeF16 : writeBf16)(bits, values, new Uint16Array(encoded.buffer, encoded.byteOffset, values), 0);
    }
    writeSync(out, encoded, 0, n * outRowBytes, outAt + r * outRowBytes);
  }
}
