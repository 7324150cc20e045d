import { closeSync, openSync, readSync, writeSync } from "node:fs";
import { encodeRows, isByteCopy, permuteRowBytes, PIECE } from "./encode-rows.js";
import type { Affine } from "./architectures/types.js";
import type { OutputType } from "./quantize.js";
import { instantiateKernels, KERNEL_SLACK, type SimdKernels } from "./simd-kernels.js";

/** A run of whole rows of one tensor: source bytes at `srcAt` of `file`, output bytes at `outAt`. */
export interface Block {
  tensor: number;
  file: string;
  srcDtype: string;
  srcAt: number;
  srcBytes: number;
  outAt: number;
  outBytes: number;
  rows: number;
  cols: number;
  /** Rows per head when q/k rows are reordered for llama.cpp's RoPE, else 0. */
  headRows: number;
  outType: OutputType;
  affine?: Affine;
}

/** `bytes` rounded up to whole vectors, plus the room the kernels may overrun into. */
const region = (bytes: number): number => Math.ceil(bytes / 16) * 16 + KERNEL_SLACK;

/**
 * Converts blocks one at a time with positioned reads and writes straight into and out of the
 * SIMD kernels' memory, which holds one source block, one encoded block and a float32 scratch
 * piece (sized for the largest block). One runs in each encode thread, or on the calling thread
 * for small models.
 */
export class BlockRunner {
  private readonly inputs = new Map<string, number>();
  private readonly output: number;
  private readonly kernels: SimdKernels;
  private readonly outAt: number;
  private readonly scratchAt: number;

  constructor(outputPath: string, srcBytes: number, outBytes: number) {
    this.outAt = region(srcBytes);
    this.scratchAt = this.outAt + region(outBytes);
    this.kernels = instantiateKernels(this.scratchAt + region(PIECE * 4));
    this.output = openSync(outputPath, "r+");
  }

  run(block: Block): void {
    let input = this.inputs.get(block.file);
    if (input === undefined) this.inputs.set(block.file, (input = openSync(block.file, "r")));
    const src = Buffer.from(this.kernels.memory, 0, block.srcBytes);
    for (let done = 0; done < src.length;) {
      const n = readSync(input, src, done, src.length - done, block.srcAt + done);
      if (n === 0) throw new Error(`${block.file}: unexpected end of file at byte ${block.srcAt + done}`);
      done += n;
    }
    const encoded = Buffer.from(this.kernels.memory, this.outAt, block.outBytes);
    let data = encoded;
    if (block.affine || !isByteCopy(block.srcDtype, block.outType)) {
      const { srcDtype, outType, rows, cols, headRows, affine } = block;
      encodeRows(this.kernels, { srcDtype, outType, srcAt: 0, outAt: this.outAt, scratchAt: this.scratchAt, rows, cols, headRows, affine });
    } else if (block.headRows) {
      permuteRowBytes(src, encoded, block.rows, block.srcBytes / block.rows, block.headRows);
    } else {
      data = src;
    }
    for (let done = 0; done < data.length;) done += writeSync(this.output, data, done, data.length - done, block.outAt + done);
  }

  close(): void {
    for (const fd of this.inputs.values()) closeSync(fd);
    closeSync(this.output);
  }
}
