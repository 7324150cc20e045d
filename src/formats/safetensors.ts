import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { FormatError } from "./errors.js";
import { parseJsonText, readJsonObject } from "./json.js";
import { PositionedReader } from "./positioned-reader.js";

export const SAFETENSORS_DTYPE_SIZES: Readonly<Record<string, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1,
  BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
};

/** Header larger than this is refused rather than allocated (the reference implementation uses 100 MB). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface SafetensorsTensor {
  name: string;
  dtype: string;
  /** Outermost-first (NumPy order). */
  shape: number[];
  /** Absolute byte range in the file. */
  start: number;
  end: number;
  file: string;
}

export interface SafetensorsFile {
  path: string;
  fileSize: number;
  headerSize: number;
  metadata: Record<string, string>;
  tensors: SafetensorsTensor[];
}

/** Reads and validates a .safetensors header; tensor bytes are read later with readSafetensorsData. */
export function readSafetensors(path: string): SafetensorsFile {
  const r: PositionedReader = new PositionedReader(path);
  try {
    if (r.size < 8) r.fail(`truncated: ${r.size} bytes is too small to be a safetensors file`, 0);
    const headerSize = r.count("header length", Math.min(MAX_HEADER_BYTES, r.size - 8));
    const text = r.utf8(headerSize, "JSON header");
    const header = parseJsonText(text, path, "header", 8);
    if (typeof header !== "object" || header === null || Array.isArray(header)) r.fail("header is not a JSON object", 8);
    const dataStart = 8 + headerSize;
    const dataSize = r.size - dataStart;
    const tensors: SafetensorsTensor[] = [];
    let metadata: Record<string, string> = {};
    for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
      if (name === "__metadata__") {
        if (typeof raw !== "object" || raw === null || Object.values(raw).some((v) => typeof v !== "string")) {
          r.fail("__metadata__ must map strings to strings", 8);
        }
        metadata = raw as Record<string, string>;
        continue;
      }
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) r.fail(`tensor ${preview(name)} is ${preview(raw)}, not an object`, 8);
      const t = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      const size = typeof t.dtype === "string" && Object.hasOwn(SAFETENSORS_DTYPE_SIZES, t.dtype) ? SAFETENSORS_DTYPE_SIZES[t.dtype] : undefined;
      if (size === undefined) r.fail(`tensor ${preview(name)} has unknown dtype ${preview(t.dtype)}`, 8);
      if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
        r.fail(`tensor ${preview(name)} has an invalid shape ${preview(t.shape)}`, 8);
      }
      const offs = t.data_offsets;
      if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0) || offs[0] > offs[1]) {
        r.fail(`tensor ${preview(name)} has invalid data_offsets ${preview(offs)}`, 8);
      }
      const [begin, end] = offs as [number, number];
      const elements = (t.shape as number[]).reduce((a, b) => a * b, 1);
      if (!Number.isSafeInteger(elements * size)) r.fail(`tensor ${preview(name)} shape ${preview(t.shape)} has too many elements`, 8);
      if (end - begin !== elements * size) {
        r.fail(`tensor ${preview(name)} occupies ${end - begin} bytes but ${t.dtype}${JSON.stringify(t.shape)} needs ${elements * size}`, dataStart + begin);
      }
      if (end > dataSize) r.fail(`truncated: tensor ${preview(name)} ends at data byte ${end}, only ${dataSize} present`, dataStart + begin);
      tensors.push({ name, dtype: t.dtype as string, shape: t.shape as number[], start: dataStart + begin, end: dataStart + end, file: path });
    }
    // The format requires tensors to tile the data section exactly: no gaps, no overlaps.
    const sorted = [...tensors].sort((a, b) => a.start - b.start);
    let expected = dataStart;
    for (const t of sorted) {
      if (t.start !== expected) r.fail(`tensor ${preview(t.name)} data is not contiguous (starts at ${t.start}, expected ${expected})`, t.start);
      expected = t.end;
    }
    if (expected !== r.size) r.fail(`data section has ${r.size - expected} trailing bytes not covered by any tensor`, expected);
    return { path, fileSize: r.size, headerSize, metadata, tensors };
  } finally {
    r.close();
  }
}

/** A bounded rendering of a JSON value for error messages. */
function preview(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

/**
 * A shard name from model.safetensors.index.json, checked to be a plain file name in the folder:
 * the index must not make a reader open files elsewhere (`../../etc/passwd`).
 */
function checkShardName(indexPath: string, shard: unknown): string {
  if (typeof shard !== "string" || shard === "" || shard === "." || shard === ".." || shard.includes("/") || shard.includes("\\") || shard.includes("\0")) {
    throw new FormatError(indexPath, undefined, `shard name ${preview(shard)} is not a plain file name`);
  }
  return shard;
}

/** model.safetensors.index.json's weight_map (tensor name → shard file name), with every shard name checked. */
export function readWeightMap(indexPath: string): Record<string, string> {
  const weightMap = readJsonObject(indexPath, "the shard index").weight_map;
  if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) {
    throw new FormatError(indexPath, undefined, "shard index has no weight_map object");
  }
  for (const shard of Object.values(weightMap)) checkShardName(indexPath, shard);
  return weightMap as Record<string, string>;
}

/** Reads one tensor's bytes on demand with a positioned read. */
export function readSafetensorsData(tensor: SafetensorsTensor): Buffer {
  const r = new PositionedReader(tensor.file);
  try {
    return r.readAt(tensor.start, tensor.end - tensor.start);
  } finally {
    r.close();
  }
}

export interface SafetensorsModel {
  files: SafetensorsFile[];
  tensors: Map<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

/**
 * Reads a checkpoint: a single model.safetensors, or the shards listed by
 * model.safetensors.index.json (every listed tensor must be found in the shard it names).
 */
export function readSafetensorsModel(folderOrFile: string): SafetensorsModel {
  const indexPath = folderOrFile.endsWith(".json") ? folderOrFile : join(folderOrFile, "model.safetensors.index.json");
  if (existsSync(indexPath)) return readSharded(indexPath);
  const single = folderOrFile.endsWith(".safetensors") ? folderOrFile : join(folderOrFile, "model.safetensors");
  const file = readSafetensors(single);
  return { files: [file], tensors: new Map(file.tensors.map((t) => [t.name, t])), metadata: file.metadata };
}

function readSharded(indexPath: string): SafetensorsModel {
  const weightMap = readWeightMap(indexPath);
  const dir = dirname(indexPath);
  const shardNames = [...new Set(Object.values(weightMap))];
  const files: SafetensorsFile[] = [];
  const tensors = new Map<string, SafetensorsTensor>();
  for (const shard of shardNames) {
    const shardPath = join(dir, shard);
    if (!existsSync(shardPath)) throw new FormatError(indexPath, undefined, `shard ${shard} listed in the index is missing`);
    const file = readSafetensors(shardPath);
    files.push(file);
    for (const t of file.tensors) {
      if (tensors.has(t.name)) throw new FormatError(shardPath, undefined, `tensor ${preview(t.name)} appears in more than one shard`);
      tensors.set(t.name, t);
    }
  }
  for (const [name, shard] of Object.entries(weightMap)) {
    const t = tensors.get(name);
    if (!t) throw new FormatError(join(dir, shard), undefined, `tensor ${preview(name)} listed in the index is not in this shard`);
    if (t.file !== join(dir, shard)) throw new FormatError(t.file, undefined, `tensor ${preview(name)} is in ${t.file}, but the index says ${shard}`);
  }
  return { files, tensors, metadata: files[0]?.metadata ?? {} };
}
