import { closeSync, ftruncateSync, openSync, writeSync } from "node:fs";
import { availableParallelism } from "node:os";
import { encodeGgufHeader, type GgufWriteValue } from "../formats/gguf-writer.js";
import type { TensorPlan } from "./architectures/types.js";
import { type Block, BlockRunner } from "./block-runner.js";
import { encodeThreads, type EncodeThreads } from "./encode-pool.js";
import { SOURCE_DTYPE_BYTES } from "./encode-rows.js";
import { encode, encodedBytes, type OutputType } from "./quantize.js";

export interface PlannedTensor {
  plan: TensorPlan;
  type: OutputType;
  /** GGUF dims (innermost first) and ggml type, for the header. */
  dims: number[];
  ggmlType: number;
}

export interface TensorProgress {
  tensor: string;
  index: number;
  total: number;
  bytesRead: number;
  bytesTotal: number;
}

/** Source bytes per block of rows: small enough that a block stays in the CPU cache from read to write. */
const BLOCK_BYTES = 1 << 20;
/** Below this many source bytes, threads cost more to start than they save. */
const THREAD_THRESHOLD_BYTES = 16 << 20;

const elementsOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/**
 * The encode threads a conversion should use: `workers` when given, else one per core for a
 * model of more than a few MB (copies too run there, to keep the main event loop free).
 */
export function startEncodePool(tensors: readonly PlannedTensor[], workers: number | undefined): EncodeThreads | undefined {
  const bytes = tensors.reduce((n, { plan }) => n + plan.sources.reduce((m, s) => m + s.end - s.start, 0), 0);
  const threads = workers ?? (bytes > THREAD_THRESHOLD_BYTES ? availableParallelism() : 0);
  return threads > 0 && bytes > 0 ? encodeThreads(threads) : undefined;
}

/** Cuts each sourced tensor into blocks of about BLOCK_BYTES; permuted tensors in whole heads. */
function planBlocks(tensors: readonly PlannedTensor[], dataAt: readonly number[]): Block[] {
  const blocks: Block[] = [];
  tensors.forEach(({ plan, type }, tensor) => {
    if (plan.sources.length === 0) return;
    const elements = elementsOf(plan.shape);
    const totalRows = plan.permuteHeads ? plan.shape[0]! : elements / plan.shape[plan.shape.length - 1]!;
    const cols = elements / totalRows;
    const outRowBytes = encodedBytes(type, cols);
    // Several sources fill consecutive rows of the output (stacked experts), each in its own blocks.
    let outRow = 0;
    for (const source of plan.sources) {
      const srcRowBytes = cols * SOURCE_DTYPE_BYTES[source.dtype]!;
      const rows = plan.sources.length === 1 ? totalRows : (source.end - source.start) / srcRowBytes;
      const headRows = plan.permuteHeads ? rows / plan.permuteHeads : 0;
      const group = headRows || 1;
      const perBlock = Math.max(group, Math.floor(BLOCK_BYTES / (srcRowBytes * group)) * group);
      for (let r = 0; r < rows; r += perBlock) {
        const n = Math.min(perBlock, rows - r);
        blocks.push({
          tensor, file: source.file, srcDtype: source.dtype, srcAt: source.start + r * srcRowBytes, srcBytes: n * srcRowBytes,
          outAt: dataAt[tensor]! + (outRow + r) * outRowBytes, outBytes: n * outRowBytes, rows: n, cols, headRows, outType: type, affine: plan.affine,
        });
      }
      outRow += rows;
    }
  });
  return blocks;
}

/**
 * Reports progress per tensor, in order, as blocks finish in any order: tensor k is reported
 * once it and every tensor before it are complete.
 */
function progressTracker(tensors: readonly PlannedTensor[], blocks: readonly Block[], onProgress?: (p: TensorProgress) => void): (block: number) => void {
  const left = tensors.map(() => 0);
  const bytes = tensors.map(() => 0);
  for (const b of blocks) {
    left[b.tensor]!++;
    bytes[b.tensor]! += b.srcBytes;
  }
  const bytesTotal = bytes.reduce((a, b) => a + b, 0);
  let next = 0;
  let bytesRead = 0;
  const advance = (): void => {
    for (; next < tensors.length && left[next] === 0; next++) {
      bytesRead += bytes[next]!;
      onProgress?.({ tensor: tensors[next]!.plan.name, index: next + 1, total: tensors.length, bytesRead, bytesTotal });
    }
  };
  advance();
  return (block) => {
    left[blocks[block]!.tensor]!--;
    advance();
  };
}

/**
 * Writes the GGUF: the header, then every tensor's data at its offset. Tensors are cut into
 * blocks of whole rows; the pool's threads claim blocks in file order and each reads, encodes
 * (or copies) and writes its block through buffers of its own, so memory is a couple of
 * blocks per thread whatever the model size. Without a pool the calling thread does the same.
 * Returns the source bytes read.
 */
export async function writeGgufFile(
  path: string,
  metadata: ReadonlyMap<string, GgufWriteValue>,
  tensors: readonly PlannedTensor[],
  pool: EncodeThreads | undefined,
  onProgress?: (p: TensorProgress) => void,
): Promise<number> {
  const { header, offsets, dataOffset, alignment } = encodeGgufHeader(metadata, tensors.map((t) => ({ name: t.plan.name, dims: t.dims, type: t.ggmlType })));
  const dataAt = offsets.map((o) => dataOffset + o);
  const blocks = planBlocks(tensors, dataAt);
  const last = tensors.at(-1);
  const end = last ? dataAt.at(-1)! + Math.ceil(encodedBytes(last.type, elementsOf(last.plan.shape)) / alignment) * alignment : dataOffset;

  const fd = openSync(path, "w");
  try {
    writeSync(fd, header, 0, header.length, 0);
    // Computed tensors (rope factors) are small: encoded and written here.
    for (const [i, { plan, type }] of tensors.entries()) {
      if (!plan.values) continue;
      const data = encode(plan.values(), type);
      writeSync(fd, data, 0, data.length, dataAt[i]!);
    }
    // Pad the last tensor so the file length is aligned, as llama.cpp's writer does.
    ftruncateSync(fd, end);
  } finally {
    closeSync(fd);
  }

  const blockDone = progressTracker(tensors, blocks, onProgress);
  if (pool) {
    await pool.run(path, blocks, blockDone);
  } else {
    const runner = new BlockRunner(path, blocks.reduce((m, b) => Math.max(m, b.srcBytes), 0), blocks.reduce((m, b) => Math.max(m, b.outBytes), 0));
    try {
      for (const [i, block] of blocks.entries()) {
        runner.run(block);
        blockDone(i);
      }
    } finally {
      runner.close();
    }
  }
  return blocks.reduce((n, b) => n + b.srcBytes, 0);
}
