import { closeSync, openSync, writeSync } from "node:fs";
import { SAFETENSORS_DTYPE_SIZES } from "./safetensors.js";

export interface SafetensorsWriteTensor {
  name: string;
  dtype: string;
  /** Outermost-first (NumPy order). */
  shape: number[];
  data: Buffer;
}

/** Writes a .safetensors file: u64 header length, JSON header (8-byte padded), tensor bytes. */
export function writeSafetensors(path: string, tensors: readonly SafetensorsWriteTensor[], metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const size = SAFETENSORS_DTYPE_SIZES[t.dtype];
    if (size === undefined) throw new Error(`unknown dtype ${t.dtype}`);
    const expected = t.shape.reduce((a, b) => a * b, 1) * size;
    if (t.data.length !== expected) throw new Error(`tensor "${t.name}": ${t.data.length} bytes, ${t.dtype}${JSON.stringify(t.shape)} needs ${expected}`);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + expected] };
    offset += expected;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const jsonBytes = Buffer.from(json, "utf8");
  const fd = openSync(path, "w");
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(jsonBytes.length));
    let pos = 0;
    pos += writeSync(fd, len, 0, 8, pos);
    pos += writeSync(fd, jsonBytes, 0, jsonBytes.length, pos);
    for (const t of tensors) pos += writeSync(fd, t.data, 0, t.data.length, pos);
  } finally {
    closeSync(fd);
  }
}
