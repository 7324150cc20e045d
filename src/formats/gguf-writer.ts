import { closeSync, ftruncateSync, openSync, writeSync } from "node:fs";
import { ggmlTensorBytes } from "./ggml-types.js";
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GgufValueType } from "./gguf.js";

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

class ByteSink {
  private chunks: Buffer[] = [];
  length = 0;
  push(b: Buffer): void { this.chunks.push(b); this.length += b.length; }
  u32(v: number): void { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.push(b); }
  u64(v: number | bigint): void { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.push(b); }
  str(s: string): void { const b = Buffer.from(s, "utf8"); this.u64(b.length); this.push(b); }
  concat(): Buffer { return Buffer.concat(this.chunks, this.length); }
}

function writeScalar(sink: ByteSink, type: GgufValueType, v: number | bigint | boolean | string): void {
  const b = Buffer.alloc(8);
  switch (type) {
    case GgufValueType.UINT8: b.writeUInt8(Number(v)); sink.push(b.subarray(0, 1)); return;
    case GgufValueType.INT8: b.writeInt8(Number(v)); sink.push(b.subarray(0, 1)); return;
    case GgufValueType.UINT16: b.writeUInt16LE(Number(v)); sink.push(b.subarray(0, 2)); return;
    case GgufValueType.INT16: b.writeInt16LE(Number(v)); sink.push(b.subarray(0, 2)); return;
    case GgufValueType.UINT32: b.writeUInt32LE(Number(v)); sink.push(b.subarray(0, 4)); return;
    case GgufValueType.INT32: b.writeInt32LE(Number(v)); sink.push(b.subarray(0, 4)); return;
    case GgufValueType.FLOAT32: b.writeFloatLE(Number(v)); sink.push(b.subarray(0, 4)); return;
    case GgufValueType.FLOAT64: b.writeDoubleLE(Number(v)); sink.push(b); return;
    case GgufValueType.UINT64: b.writeBigUInt64LE(BigInt(v)); sink.push(b); return;
    case GgufValueType.INT64: b.writeBigInt64LE(BigInt(v)); sink.push(b); return;
    case GgufValueType.BOOL: b.writeUInt8(v ? 1 : 0); sink.push(b.subarray(0, 1)); return;
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
  const header = Buffer.alloc(dataOffset);
  sink.concat().copy(header);
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
