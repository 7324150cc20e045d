import { closeSync, ftruncateSync, openSync, writeSync } from "node:fs";
import { ggmlTensorBytes } from "./ggml-types.js";
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, type GgufFile, GgufValueType } from "./gguf.js";

export type GgufWriteValue =
  | { type: Exclude<GgufValueType, GgufValueType.ARRAY>; value: number | bigint | boolean | string }
  | { type: GgufValueType.ARRAY; arrayType: Exclude<GgufValueType, GgufValueType.ARRAY>; value: (number | bigint | boolean | string)[] };

export interface GgufWriteTensor {
  name: string;
  /** Innermost-first, as GGUF stores them. */
  dims: number[];
  type: number;
  /** Produces the tensor's bytes when it is written, so only one tensor is in memory at a time. */
  data: () => Buffer | Promise<Buffer>;
}

const utf8 = new TextEncoder();

/** A growing little-endian byte buffer (a vocabulary is a few hundred thousand small values). */
class ByteSink {
  private buf = Buffer.allocUnsafe(1 << 16);
  length = 0;
  /** Reserves n bytes and returns their offset; may replace `buf`, so call it before naming `buf`. */
  private room(n: number): number {
    if (this.length + n > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
      this.buf.copy(next, 0, 0, this.length);
      this.buf = next;
    }
    const at = this.length;
    this.length += n;
    return at;
  }
  u8(v: number): void { const at = this.room(1); this.buf.writeUInt8(v, at); }
  i8(v: number): void { const at = this.room(1); this.buf.writeInt8(v, at); }
  u16(v: number): void { const at = this.room(2); this.buf.writeUInt16LE(v, at); }
  i16(v: number): void { const at = this.room(2); this.buf.writeInt16LE(v, at); }
  u32(v: number): void { const at = this.room(4); this.buf.writeUInt32LE(v, at); }
  i32(v: number): void { const at = this.room(4); this.buf.writeInt32LE(v, at); }
  f32(v: number): void { const at = this.room(4); this.buf.writeFloatLE(v, at); }
  f64(v: number): void { const at = this.room(8); this.buf.writeDoubleLE(v, at); }
  u64(v: number | bigint): void {
    if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) {
      const at = this.room(8);
      this.buf.writeUInt32LE(v % 0x100000000, at);
      this.buf.writeUInt32LE(Math.floor(v / 0x100000000), at + 4);
    } else {
      const at = this.room(8);
      this.buf.writeBigUInt64LE(BigInt(v), at);
    }
  }
  i64(v: number | bigint): void { const at = this.room(8); this.buf.writeBigInt64LE(BigInt(v), at); }
  str(s: string): void {
    // Room for the worst case (3 bytes per UTF-16 unit), then give back what was not used.
    const at = this.room(8 + 3 * s.length);
    const n = utf8.encodeInto(s, this.buf.subarray(at + 8)).written;
    this.length = at;
    this.u64(n);
    this.length += n;
  }
  /** The bytes written, zero-padded to `size` (at least `length`). */
  padded(size: number): Buffer {
    const out = Buffer.alloc(size);
    this.buf.copy(out, 0, 0, this.length);
    return out;
  }
}

function writeScalar(sink: ByteSink, type: GgufValueType, v: number | bigint | boolean | string): void {
  switch (type) {
    case GgufValueType.UINT8: sink.u8(Number(v)); return;
    case GgufValueType.INT8: sink.i8(Number(v)); return;
    case GgufValueType.UINT16: sink.u16(Number(v)); return;
    case GgufValueType.INT16: sink.i16(Number(v)); return;
    case GgufValueType.UINT32: sink.u32(Number(v)); return;
    case GgufValueType.INT32: sink.i32(Number(v)); return;
    case GgufValueType.FLOAT32: sink.f32(Number(v)); return;
    case GgufValueType.FLOAT64: sink.f64(Number(v)); return;
    case GgufValueType.UINT64: sink.u64(typeof v === "bigint" ? v : BigInt(v)); return;
    case GgufValueType.INT64: sink.i64(v as number | bigint); return;
    case GgufValueType.BOOL: sink.u8(v ? 1 : 0); return;
    case GgufValueType.STRING: sink.str(String(v)); return;
    default: throw new Error(`cannot write GGUF value type ${type}`);
  }
}

/** Encodes header, metadata and tensor table; returns the bytes and each tensor's data offset. */
export function encodeGgufHeader(
  metadata: ReadonlyMap<string, GgufWriteValue>,
  tensors: readonly Pick<GgufWriteTensor, "name" | "dims" | "type">[],
): { header: Buffer; offsets: number[]; dataOffset: number; alignment: number } {
  const alignmentEntry = metadata.get("general.alignment");
  const alignment = alignmentEntry ? Number(alignmentEntry.value) : GGUF_DEFAULT_ALIGNMENT;
  const sink = new ByteSink();
  sink.u32(GGUF_MAGIC);
  sink.u32(3);
  sink.u64(tensors.length);
  sink.u64(metadata.size);
  for (const [key, entry] of metadata) {
    sink.str(key);
    sink.u32(entry.type);
    if (entry.type === GgufValueType.ARRAY) {
      sink.u32(entry.arrayType);
      sink.u64(entry.value.length);
      for (const v of entry.value) writeScalar(sink, entry.arrayType, v);
    } else {
      writeScalar(sink, entry.type, entry.value);
    }
  }
  const offsets: number[] = [];
  let offset = 0;
  for (const t of tensors) {
    const bytes = ggmlTensorBytes(t.type, t.dims.reduce((a, b) => a * b, 1));
    if (bytes === undefined) throw new Error(`tensor "${t.name}": unknown ggml type ${t.type}`);
    sink.str(t.name);
    sink.u32(t.dims.length);
    for (const d of t.dims) sink.u64(d);
    sink.u32(t.type);
    sink.u64(offset);
    offsets.push(offset);
    offset += Math.ceil(bytes / alignment) * alignment;
  }
  const dataOffset = Math.ceil(sink.length / alignment) * alignment;
  const header = sink.padded(dataOffset);
  return { header, offsets, dataOffset, alignment };
}

/**
 * Writes a GGUF v3 file tensor by tensor with positioned writes. Each tensor's data callback is
 * called in order, so peak memory is one tensor plus the header.
 */
export async function writeGguf(
  path: string,
  metadata: ReadonlyMap<string, GgufWriteValue>,
  tensors: readonly GgufWriteTensor[],
): Promise<void> {
  const { header, offsets, dataOffset, alignment } = encodeGgufHeader(metadata, tensors);
  const fd = openSync(path, "w");
  try {
    writeSync(fd, header, 0, header.length, 0);
    let end = dataOffset;
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i]!;
      const data = await t.data();
      const expected = ggmlTensorBytes(t.type, t.dims.reduce((a, b) => a * b, 1));
      if (data.length !== expected) throw new Error(`tensor "${t.name}": got ${data.length} bytes, expected ${expected}`);
      const at = dataOffset + offsets[i]!;
      writeSync(fd, data, 0, data.length, at);
      end = at + Math.ceil(data.length / alignment) * alignment;
    }
    // Pad the last tensor so the file length is aligned, as llama.cpp's writer does.
    ftruncateSync(fd, end);
  } finally {
    closeSync(fd);
  }
}

/** A read GGUF's metadata as the writer takes it, each value with its recorded type (faithful rewriting). */
export function writableMetadata(file: Pick<GgufFile, "metadata" | "metadataTypes">): Map<string, GgufWriteValue> {
  const out = new Map<string, GgufWriteValue>();
  for (const [key, value] of file.metadata) {
    const { type, arrayType } = file.metadataTypes.get(key)!;
    out.set(key, type === GgufValueType.ARRAY ? ({ type, arrayType, value } as GgufWriteValue) : ({ type, value } as GgufWriteValue));
  }
  return out;
}
