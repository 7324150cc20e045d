import { closeSync, openSync, writeSync } from "node:fs";
import { SAFETENSORS_DTYPE_SIZES } from "./safetensors.js";

export interface SafetensorsWriteTensor {
  name: string;
  dtype: string;
  /** Outermost-first (NumPy order). */
  shape: number[];
  data: Buffer;
}

/** A tensor's place in a .safetensors file, before its bytes exist. */
export interface SafetensorsTensorLayout {
  name: string;
  dtype: string;
  /** Outermost-first (NumPy order). */
  shape: number[];
}

/**
 * The file's head: u64 header length + JSON header (padded to 8 bytes), and each tensor's byte
 * offset in the file, in the order given.
 */
export function encodeSafetensorsHeader(tensors: readonly SafetensorsTensorLayout[], metadata?: Record<string, string>): { head: Buffer; offsets: number[]; sizes: number[] } {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  const sizes: number[] = [];
  for (const t of tensors) {
    const size = SAFETENSORS_DTYPE_SIZES[t.dtype];
    if (size === undefined) throw new Error(`unknown dtype ${t.dtype}`);
    const bytes = t.shape.reduce((a, b) => a * b, 1) * size;
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    sizes.push(bytes);
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const jsonBytes = Buffer.from(json, "utf8");
  const head = Buffer.alloc(8 + jsonBytes.length);
  head.writeBigUInt64LE(BigInt(jsonBytes.length));
  jsonBytes.copy(head, 8);
  const offsets: number[] = [];
  let at = head.length;
  for (const bytes of sizes) {
    offsets.push(at);
    at += bytes;
  }
  return { head, offsets, sizes };
}

/** Writes a .safetensors file: u64 header length, JSON header (8-byte padded), tensor bytes. */
export function writeSafetensors(path: string, tensors: readonly SafetensorsWriteTensor[], metadata?: Record<string, string>): void {
  const { head, offsets, sizes } = encodeSafetensorsHeader(tensors, metadata);
  tensors.forEach((t, i) => {
    if (t.data.length !== sizes[i]) throw new Error(`tensor "${t.name}": ${t.data.length} bytes, ${t.dtype}${JSON.stringify(t.shape)} needs ${sizes[i]}`);
  });
  const fd = openSync(path, "w");
  try {
    writeSync(fd, head, 0, head.length, 0);
    tensors.forEach((t, i) => writeSync(fd, t.data, 0, t.data.length, offsets[i]!));
  } finally {
    closeSync(fd);
  }
}
