import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { FormatError } from "./errors.js";

const WINDOW = 1 << 20;

/**
 * Sequential little-endian decoding over positioned reads of a file. Only a window of the file
 * is ever in memory, so inspecting a 40 GB model reads just its header.
 */
export class PositionedReader {
  readonly size: number;
  private readonly fd: number;
  private buf = Buffer.alloc(0);
  private bufStart = 0;
  pos = 0;

  /** Opens a regular file; a missing, unreadable or non-regular path is a FormatError, not an errno. */
  constructor(readonly path: string) {
    try {
      this.fd = openSync(path, "r");
    } catch (e) {
      throw new FormatError(path, undefined, `cannot open: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const st = fstatSync(this.fd);
    if (!st.isFile()) {
      closeSync(this.fd);
      throw new FormatError(path, undefined, "not a regular file");
    }
    this.size = st.size;
  }

  close(): void {
    closeSync(this.fd);
  }

  fail(reason: string, offset = this.pos): never {
    throw new FormatError(this.path, offset, reason);
  }

  get remaining(): number {
    return this.size - this.pos;
  }

  /** Makes [pos, pos+n) available in the window; refuses reads past EOF before allocating. */
  private ensure(n: number, what: string): number {
    if (n > this.remaining) this.fail(`truncated: ${what} needs ${n} bytes, ${this.remaining} left in file`);
    const start = this.pos - this.bufStart;
    if (start >= 0 && start + n <= this.buf.length) return start;
    const want = Math.min(Math.max(n, WINDOW), this.remaining);
    if (this.buf.length < want) this.buf = Buffer.alloc(want);
    const read = readSync(this.fd, this.buf, 0, want, this.pos);
    if (read < n) this.fail(`short read: wanted ${n} bytes, got ${read}`);
    this.buf = this.buf.subarray(0, read);
    this.bufStart = this.pos;
    return 0;
  }

  /** Reads bytes at an absolute position without moving the cursor. */
  readAt(position: number, length: number): Buffer {
    if (position < 0 || position + length > this.size) this.fail(`read of ${length} bytes past end of file`, position);
    const out = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const r = readSync(this.fd, out, done, length - done, position + done);
      if (r === 0) this.fail("unexpected end of file", position + done);
      done += r;
    }
    return out;
  }

  bytes(n: number, what = "bytes"): Buffer {
    const at = this.ensure(n, what);
    this.pos += n;
    return Buffer.from(this.buf.subarray(at, at + n));
  }

  skip(n: number, what = "bytes"): void {
    this.ensure(n, what);
    this.pos += n;
  }

  u8(): number { const at = this.ensure(1, "u8"); this.pos += 1; return this.buf.readUInt8(at); }
  i8(): number { const at = this.ensure(1, "i8"); this.pos += 1; return this.buf.readInt8(at); }
  u16(): number { const at = this.ensure(2, "u16"); this.pos += 2; return this.buf.readUInt16LE(at); }
  i16(): number { const at = this.ensure(2, "i16"); this.pos += 2; return this.buf.readInt16LE(at); }
  u32(): number { const at = this.ensure(4, "u32"); this.pos += 4; return this.buf.readUInt32LE(at); }
  i32(): number { const at = this.ensure(4, "i32"); this.pos += 4; return this.buf.readInt32LE(at); }
  f32(): number { const at = this.ensure(4, "f32"); this.pos += 4; return this.buf.readFloatLE(at); }
  f64(): number { const at = this.ensure(8, "f64"); this.pos += 8; return this.buf.readDoubleLE(at); }
  u64(): bigint { const at = this.ensure(8, "u64"); this.pos += 8; return this.buf.readBigUInt64LE(at); }
  i64(): bigint { const at = this.ensure(8, "i64"); this.pos += 8; return this.buf.readBigInt64LE(at); }

  /** A u64 that must fit a JS number and stay under `max` (a count or length that the file claims). */
  count(what: string, max: number): number {
    const at = this.pos;
    const v = this.u64();
    if (v > BigInt(max)) this.fail(`${what} ${v} is impossible for a file of ${this.size} bytes`, at);
    return Number(v);
  }

  utf8(n: number, what = "string"): string {
    const at = this.ensure(n, what);
    this.pos += n;
    return this.buf.toString("utf8", at, at + n);
  }
}
