import { closeSync, openSync, readSync } from "node:fs";
import { FormatError } from "./errors.js";
import { GGML_TYPES } from "./ggml-types.js";
import { PositionedReader } from "./positioned-reader.js";

export const GGUF_MAGIC = 0x46554747; // "GGUF" read little-endian
export const GGUF_DEFAULT_ALIGNMENT = 32;

export enum GgufValueType {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
}

/** An array that was stepped over past its first elements, not decoded (see ReadGgufOptions.maxArrayLength). */
export class GgufSkippedArray {
  constructor(
    readonly elementType: GgufValueType,
    readonly length: number,
    /** The first `previewLength` elements (none unless ReadGgufOptions.previewLength asked for them). */
    readonly first: GgufValue[] = [],
  ) {}
}

/** Metadata values as decoded: 64-bit integers become numbers when safe, bigint otherwise. */
export type GgufValue = number | bigint | boolean | string | GgufValue[] | GgufSkippedArray;

export interface ReadGgufOptions {
  /** Arrays longer than this are stepped over and kept as GgufSkippedArray (vocabularies, merges). */
  maxArrayLength?: number;
  /** How many leading elements of a stepped-over array to keep (default 0). */
  previewLength?: number;
}

export interface GgufTensorInfo {
  name: string;
  /** Innermost-first, as stored in the file. */
  dims: number[];
  type: number;
  typeName: string;
  /** Relative to the data section. */
  offset: number;
  elements: number;
  bytes: number;
}

export interface GgufFile {
  path: string;
  fileSize: number;
  version: number;
  metadata: Map<string, GgufValue>;
  /** Value type of each key (arrays record their element type too), for faithful rewriting. */
  metadataTypes: Map<string, { type: GgufValueType; arrayType?: GgufValueType }>;
  tensors: GgufTensorInfo[];
  alignment: number;
  dataOffset: number;
}

// Smallest possible encodings, used to refuse counts that could not fit in the file.
const MIN_KV_BYTES = 8 + 4 + 1;
const MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8;
// llama.cpp's limits (ggml.h GGML_MAX_DIMS, GGML_MAX_NAME): files past them fail to load there.
const MAX_DIMS = 4;
const MAX_TENSOR_NAME_BYTES = 63;
const INT64_MAX = 2n ** 63n - 1n;
const FIXED_SIZES: Partial<Record<GgufValueType, number>> = {
  [GgufValueType.UINT8]: 1, [GgufValueType.INT8]: 1, [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT16]: 2, [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4, [GgufValueType.INT32]: 4, [GgufValueType.FLOAT32]: 4,
  [GgufValueType.UINT64]: 8, [GgufValueType.INT64]: 8, [GgufValueType.FLOAT64]: 8,
  [GgufValueType.STRING]: 8,
};

/** A key or tensor name for an error message: quoted, escaped and cut short (a corrupt file's "names" can be any bytes). */
function q(name: string): string {
  return JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name);
}

function toNumberIfSafe(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
}

function readString(r: PositionedReader, what: string): string {
  const len = r.count(`${what} length`, r.remaining);
  return r.utf8(len, what);
}

function readScalar(r: PositionedReader, type: GgufValueType, key: string): GgufValue {
  switch (type) {
    case GgufValueType.UINT8: return r.u8();
    case GgufValueType.INT8: return r.i8();
    case GgufValueType.UINT16: return r.u16();
    case GgufValueType.INT16: return r.i16();
    case GgufValueType.UINT32: return r.u32();
    case GgufValueType.INT32: return r.i32();
    case GgufValueType.FLOAT32: return r.f32();
    case GgufValueType.FLOAT64: return r.f64();
    case GgufValueType.UINT64: return toNumberIfSafe(r.u64());
    case GgufValueType.INT64: return toNumberIfSafe(r.i64());
    case GgufValueType.BOOL: {
      const at = r.pos;
      const b = r.u8();
      if (b > 1) r.fail(`bool value ${b} for key ${q(key)} is neither 0 nor 1`, at);
      return b === 1;
    }
    case GgufValueType.STRING: return readString(r, `string value of ${q(key)}`);
    default: return r.fail(`unknown metadata value type ${type as number} for key ${q(key)}`, r.pos - 4);
  }
}

/**
 * Reads a GGUF file's header, metadata and tensor table with positioned reads; tensor data is not
 * touched. Throws FormatError (file + byte offset) for anything corrupt, truncated or impossible.
 */
export function readGguf(path: string, options: ReadGgufOptions = {}): GgufFile {
  const r = new PositionedReader(path);
  try {
    return parse(r, options.maxArrayLength ?? Number.POSITIVE_INFINITY, options.previewLength ?? 0);
  } finally {
    r.close();
  }
}

/**
 * Mirrors the checks of llama.cpp's gguf_init_from_file (ggml/src/gguf.cpp), so that a file it
 * would refuse is refused here, at discovery, rather than when a request loads it.
 */
function parse(r: PositionedReader, maxArrayLength: number, previewLength: number): GgufFile {
  if (r.size < 4) r.fail(`truncated: ${r.size} bytes is too small to be a GGUF file`, 0);
  const magic = r.u32();
  if (magic !== GGUF_MAGIC) r.fail(`not a GGUF file (magic 0x${magic.toString(16).padStart(8, "0")})`, 0);
  const version = r.u32();
  if (version === 1) r.fail("GGUF v1 is obsolete; re-convert the model with a current llama.cpp", 4);
  if (version !== 2 && version !== 3) r.fail(`unsupported GGUF version ${version}`, 4);

  const tensorCount = r.count("tensor count", Math.floor(r.remaining / MIN_TENSOR_INFO_BYTES));
  const kvCount = r.count("metadata count", Math.floor(r.remaining / MIN_KV_BYTES));

  const metadata = new Map<string, GgufValue>();
  const metadataTypes = new Map<string, { type: GgufValueType; arrayType?: GgufValueType }>();
  for (let i = 0; i < kvCount; i++) {
    const keyAt = r.pos;
    const key = readString(r, `key of metadata entry ${i}`);
    if (key.length === 0) r.fail(`key of metadata entry ${i} is empty`, keyAt);
    if (metadata.has(key)) r.fail(`duplicate metadata key ${q(key)}`, keyAt);
    const typeAt = r.pos;
    const type = r.u32() as GgufValueType;
    if (type === GgufValueType.ARRAY) {
      const elemAt = r.pos;
      const elemType = r.u32() as GgufValueType;
      const minElem = FIXED_SIZES[elemType];
      if (minElem === undefined) {
        r.fail(`unsupported array element type ${elemType} for key ${q(key)}`, elemAt);
      }
      const n = r.count(`array length of ${q(key)}`, Math.floor(r.remaining / minElem));
      if (n > maxArrayLength) {
        const kept = Math.min(n, previewLength);
        const first: GgufValue[] = new Array(kept);
        for (let j = 0; j < kept; j++) first[j] = readScalar(r, elemType, key);
        if (elemType === GgufValueType.STRING) {
          const label = q(key);
          for (let j = kept; j < n; j++) r.skip(r.count(`string ${j} of ${label}`, r.remaining), `string ${j} of ${label}`);
        } else {
          r.skip((n - kept) * minElem, `array ${q(key)}`);
        }
        metadata.set(key, new GgufSkippedArray(elemType, n, first));
      } else {
        const values: GgufValue[] = new Array(n);
        for (let j = 0; j < n; j++) values[j] = readScalar(r, elemType, key);
        metadata.set(key, values);
      }
      metadataTypes.set(key, { type, arrayType: elemType });
    } else {
      if (FIXED_SIZES[type] === undefined) r.fail(`unknown metadata value type ${type} for key ${q(key)}`, typeAt);
      metadata.set(key, readScalar(r, type, key));
      metadataTypes.set(key, { type });
    }
  }

  const alignment = readAlignment(r, metadata, metadataTypes);
  const tensors: GgufTensorInfo[] = [];
  const tensorNames = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const nameAt = r.pos;
    const name = readString(r, `name of tensor ${i}`);
    if (Buffer.byteLength(name) > MAX_TENSOR_NAME_BYTES) r.fail(`tensor name ${q(name)} is longer than ${MAX_TENSOR_NAME_BYTES} bytes`, nameAt);
    if (tensorNames.has(name)) r.fail(`duplicate tensor name ${q(name)}`, nameAt);
    tensorNames.add(name);
    const dimsAt = r.pos;
    const nDims = r.u32();
    if (nDims === 0 || nDims > MAX_DIMS) r.fail(`tensor ${q(name)} has ${nDims} dimensions (1..${MAX_DIMS} allowed)`, dimsAt);
    const dims: number[] = [];
    let elements = 1n;
    for (let d = 0; d < nDims; d++) {
      const dim = r.count(`dimension ${d} of tensor ${q(name)}`, Number.MAX_SAFE_INTEGER);
      dims.push(dim);
      elements *= BigInt(dim);
    }
    if (elements >= INT64_MAX) r.fail(`tensor ${q(name)} has ${elements} elements, more than llama.cpp can address`, dimsAt);
    const typeAt = r.pos;
    const type = r.u32();
    const info = GGML_TYPES.get(type);
    if (!info) r.fail(`tensor ${q(name)} has unknown ggml type ${type}`, typeAt);
    if (dims[0]! % info.blockSize !== 0) {
      r.fail(`tensor ${q(name)} row of ${dims[0]} elements is not a multiple of ${info.name}'s block size ${info.blockSize}`, dimsAt);
    }
    const bytes = (elements / BigInt(info.blockSize)) * BigInt(info.typeSize);
    if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) r.fail(`tensor ${q(name)} would take ${bytes} bytes, more than any file holds`, dimsAt);
    const offset = r.count(`data offset of tensor ${q(name)}`, r.size);
    tensors.push({ name, dims, type, typeName: info.name, offset, elements: Number(elements), bytes: Number(bytes) });
  }

  const dataOffset = Math.ceil(r.pos / alignment) * alignment;
  // llama.cpp requires each tensor to start where the previous one (padded to the alignment) ends,
  // in table order: this rules out misaligned, overlapping and gapped layouts alike.
  let expected = 0;
  for (const t of tensors) {
    if (t.offset !== expected) {
      throw new FormatError(r.path, dataOffset + t.offset, `tensor ${q(t.name)} data starts at offset ${t.offset}, expected ${expected} (tensors must follow each other, each aligned to ${alignment} bytes)`);
    }
    const end = dataOffset + t.offset + t.bytes;
    if (end > r.size) {
      throw new FormatError(r.path, dataOffset + t.offset, `truncated: tensor ${q(t.name)} data ends at byte ${end}, file has ${r.size}`);
    }
    expected += Math.ceil(t.bytes / alignment) * alignment;
  }

  return { path: r.path, fileSize: r.size, version, metadata, metadataTypes, tensors, alignment, dataOffset };
}

/** general.alignment: absent (32), or a u32 that is a non-zero power of two, as llama.cpp requires. */
function readAlignment(r: PositionedReader, metadata: Map<string, GgufValue>, types: GgufFile["metadataTypes"]): number {
  const value = metadata.get("general.alignment");
  if (value === undefined) return GGUF_DEFAULT_ALIGNMENT;
  const type = types.get("general.alignment")!;
  if (type.type !== GgufValueType.UINT32) {
    throw new FormatError(r.path, undefined, `general.alignment must be a u32, not ${GgufValueType[type.type]}${type.arrayType !== undefined ? ` of ${GgufValueType[type.arrayType]}` : ""}`);
  }
  const alignment = value as number;
  if (alignment === 0 || (alignment & (alignment - 1)) !== 0) {
    throw new FormatError(r.path, undefined, `general.alignment ${alignment} is not a power of two`);
  }
  return alignment;
}

/** One tensor's stored bytes, read from the file (whatever its type). */
export function readGgufTensorData(file: GgufFile, t: GgufTensorInfo): Buffer {
  const buf = Buffer.alloc(t.bytes);
  const fd = openSync(file.path, "r");
  try {
    readSync(fd, buf, 0, t.bytes, file.dataOffset + t.offset);
  } finally {
    closeSync(fd);
  }
  return buf;
}

export function metaString(file: GgufFile, key: string): string | undefined {
  const v = file.metadata.get(key);
  return typeof v === "string" ? v : undefined;
}

export function metaNumber(file: GgufFile, key: string): number | undefined {
  const v = file.metadata.get(key);
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  return undefined;
}

export function metaBool(file: GgufFile, key: string): boolean | undefined {
  const v = file.metadata.get(key);
  return typeof v === "boolean" ? v : undefined;
}
