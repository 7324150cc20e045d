import { type FileHandle, open } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { encodeGgufHeader, type GgufWriteValue } from "../formats/gguf-writer.js";
import type { SafetensorsTensor } from "../formats/safetensors.js";
import type { TensorPlan } from "./architectures/types.js";
import { EncodePool } from "./encode-pool.js";
import { type EncodeJob, encodeRows, isByteCopy, permuteRowBytes, SOURCE_DTYPE_BYTES } from "./encode-rows.js";
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

/** Source bytes per block of rows: large positioned reads, while a few blocks in flight stay small. */
const BLOCK_BYTES = 8 << 20;
/** Below this much re-encoding, threads cost more to start than they save. */
const WORKER_THRESHOLD_BYTES = 16 << 20;

/** A run of whole rows of one tensor: read from `source` at `srcAt`, written at `outAt`. */
interface Block {
  tensor: number;
  source: SafetensorsTensor;
  srcAt: number;
  srcBytes: number;
  outAt: number;
  outBytes: number;
  rows: number;
  cols: number;
  headRows: number;
  outType: OutputType;
  /** The tensor's last block: progress is reported once it is read. */
  last: boolean;
}

/** Cuts each sourced tensor into blocks of about BLOCK_BYTES; permuted tensors in whole heads. */
function planBlocks(tensors: readonly PlannedTensor[], dataAt: readonly number[]): Block[] {
  const blocks: Block[] = [];
  tensors.forEach(({ plan, type }, tensor) => {
    const source = plan.sources[0];
    if (!source) return;
    const elements = plan.shape.reduce((a, b) => a * b, 1);
    const rows = plan.permuteHeads ? plan.shape[0]! : elements / plan.shape[plan.shape.length - 1]!;
    const cols = elements / rows;
    const headRows = plan.permuteHeads ? rows / plan.permuteHeads : 0;
    const srcRowBytes = cols * SOURCE_DTYPE_BYTES[source.dtype]!;
    const outRowBytes = encodedBytes(type, cols);
    const group = headRows || 1;
    const perBlock = Math.max(group, Math.floor(BLOCK_BYTES / (srcRowBytes * group)) * group);
    for (let r = 0; r < rows; r += perBlock) {
      const n = Math.min(perBlock, rows - r);
      blocks.push({
        tensor, source, srcAt: source.start + r * srcRowBytes, srcBytes: n * srcRowBytes, outAt: dataAt[tensor]! + r * outRowBytes,
        outBytes: n * outRowBytes, rows: n, cols, headRows, outType: type, last: r + n === rows,
      });
    }
  });
  return blocks;
}

async function readFully(fd: FileHandle, buf: Buffer, at: number): Promise<void> {
  for (let done = 0; done < buf.length;) {
    const { bytesRead } = await fd.read(buf, done, buf.length - done, at + done);
    if (bytesRead === 0) throw new Error(`unexpected end of file at byte ${at + done}`);
    done += bytesRead;
  }
}

async function writeFully(fd: FileHandle, buf: Buffer, at: number): Promise<void> {
  for (let done = 0; done < buf.length;) {
    const { bytesWritten } = await fd.write(buf, done, buf.length - done, at + done);
    done += bytesWritten;
  }
}

/** A pair of reusable buffers for one block in flight: source bytes and encoded bytes. */
interface Slot {
  src: SharedArrayBuffer;
  out: SharedArrayBuffer;
}

/**
 * Writes the GGUF: the header, then every tensor's data at its offset. Blocks are read in file
 * order, one after another, while earlier blocks are encoded (by `workers` threads, or inline
 * when 0) and written; at most `workers + 2` blocks are in flight, each in a reused pair of
 * buffers, so memory stays a few BLOCK_BYTES whatever the model size. Byte-copy tensors skip
 * encoding (permuted ones have whole rows moved). Returns the source bytes read.
 */
export async function writeGgufFile(
  path: string,
  metadata: ReadonlyMap<string, GgufWriteValue>,
  tensors: readonly PlannedTensor[],
  onProgress: ((p: TensorProgress) => void) | undefined,
  workers: number | undefined,
): Promise<number> {
  const { header, offsets, dataOffset, alignment } = encodeGgufHeader(metadata, tensors.map((t) => ({ name: t.plan.name, dims: t.dims, type: t.ggmlType })));
  const dataAt = offsets.map((o) => dataOffset + o);
  const blocks = planBlocks(tensors, dataAt);
  const bytesTotal = blocks.reduce((n, b) => n + b.srcBytes, 0);
  const encodeBytes = blocks.reduce((n, b) => n + (isByteCopy(b.source.dtype, b.outType) && !b.headRows ? 0 : b.srcBytes), 0);
  const threads = workers ?? (encodeBytes > WORKER_THRESHOLD_BYTES ? availableParallelism() : 0);
  const last = tensors.length - 1;
  const end = last < 0 ? dataOffset : dataAt[last]! + Math.ceil(encodedBytes(tensors[last]!.type, tensors[last]!.plan.shape.reduce((a, b) => a * b, 1)) / alignment) * alignment;

  const out = await open(path, "w");
  const inputs = new Map<string, FileHandle>();
  const pool = threads > 0 && encodeBytes > 0 ? new EncodePool(threads) : undefined;
  const pending = new Set<Promise<void>>();
  let failure: unknown;
  try {
    await writeFully(out, header, 0);
    // Computed tensors (rope factors) are small: encoded and written directly.
    for (const [i, { plan, type }] of tensors.entries()) if (plan.values) await writeFully(out, encode(plan.values(), type), dataAt[i]!);

    const srcSize = Math.max(0, ...blocks.map((b) => b.srcBytes));
    const outSize = Math.max(0, ...blocks.map((b) => b.outBytes));
    const free: Slot[] = Array.from({ length: Math.min(blocks.length, threads + 2) }, () => ({ src: new SharedArrayBuffer(srcSize), out: new SharedArrayBuffer(outSize) }));
    const waiting: ((slot: Slot) => void)[] = [];
    const acquire = (): Promise<Slot> => (free.length > 0 ? Promise.resolve(free.pop()!) : new Promise((resolve) => waiting.push(resolve)));
    const release = (slot: Slot): void => {
      const next = waiting.shift();
      if (next) next(slot);
      else free.push(slot);
    };

    let bytesRead = 0;
    for (const block of blocks) {
      const slot = await acquire();
      if (failure !== undefined) break;
      let input = inputs.get(block.source.file);
      if (!input) inputs.set(block.source.file, (input = await open(block.source.file, "r")));
      const src = Buffer.from(slot.src, 0, block.srcBytes);
      await readFully(input, src, block.srcAt);
      bytesRead += block.srcBytes;
      if (block.last) onProgress?.({ tensor: tensors[block.tensor]!.plan.name, index: block.tensor + 1, total: tensors.length, bytesRead, bytesTotal });
      const task = finishBlock(block, slot, src, out, pool)
        .catch((e: unknown) => void (failure ??= e))
        .finally(() => {
          pending.delete(task);
          release(slot);
        });
      pending.add(task);
    }
    await Promise.all(pending);
    if (failure !== undefined) throw failure;
    // Pad the last tensor so the file length is aligned, as llama.cpp's writer does.
    await out.truncate(end);
    return bytesRead;
  } finally {
    await Promise.allSettled(pending);
    await pool?.close();
    for (const fd of inputs.values()) await fd.close();
    await out.close();
  }
}

/** Encodes (or moves) one block that has been read into `slot`, then writes it. */
async function finishBlock(block: Block, slot: Slot, src: Buffer, out: FileHandle, pool: EncodePool | undefined): Promise<void> {
  const encoded = Buffer.from(slot.out, 0, block.outBytes);
  if (isByteCopy(block.source.dtype, block.outType)) {
    if (!block.headRows) return writeFully(out, src, block.outAt);
    permuteRowBytes(src, encoded, block.rows, block.srcBytes / block.rows, block.headRows);
  } else {
    const job: EncodeJob = { srcDtype: block.source.dtype, outType: block.outType, src: slot.src, out: slot.out, rows: block.rows, cols: block.cols, headRows: block.headRows };
    if (pool) await pool.run(job);
    else encodeRows(job);
  }
  return writeFully(out, encoded, block.outAt);
}
