import { closeSync, openSync, readSync, writeSync } from "node:fs";
import { type EncodeJob, encodeRows, isByteCopy, permuteRowBytes } from "./encode-rows.js";
import type { Affine } from "./architectures/types.js";
import type { OutputType } from "./quantize.js";

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

/**
 * Converts blocks one at a time with positioned reads and writes through two reusable buffers
 * (source bytes, encoded bytes) sized for the largest block. One runs in each encode thread, or
 * on the calling thread for small models.
 */
export class BlockRunner {
  private readonly inputs = new Map<string, number>();
  private readonly output: number;
  private readonly src: ArrayBuffer;
  private readonly out: ArrayBuffer;

  constructor(outputPath: string, srcBytes: number, outBytes: number) {
    this.output = openSync(outputPath, "r+");
    // Whole 8-byte units, so that every typed-array view of a buffer (up to Float64Array) fits.
    this.src = new ArrayBuffer(Math.ceil(srcBytes / 8) * 8);
    this.out = new ArrayBuffer(Math.ceil(outBytes / 8) * 8);
  }

  run(block: Block): void {
    let input = this.inputs.get(block.file);
    if (input === undefined) this.inputs.set(block.file, (input = openSync(block.file, "r")));
    const src = Buffer.from(this.src, 0, block.srcBytes);
    for (let done = 0; done < src.length;) {
      const n = readSync(input, src, done, src.length - done, block.srcAt + done);
      if (n === 0) throw new Error(`${block.file}: unexpected end of file at byte ${block.srcAt + done}`);
      done += n;
    }
    const encoded = Buffer.from(this.out, 0, block.outBytes);
    let data = encoded;
    if (block.affine || !isByteCopy(block.srcDtype, block.outType)) {
      const job: EncodeJob = { srcDtype: block.srcDtype, outType: block.outType, src: this.src, out: this.out, rows: block.rows, cols: block.cols, headRows: block.headRows, affine: block.affine };
      encodeRows(job);
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
