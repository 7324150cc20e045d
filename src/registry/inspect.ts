import { existsSync, statSync } from "node:fs";
import { fileStatKeyOrGone } from "../formats/file-stat-key.js";
import { join } from "node:path";
import { type GgufFile, GgufSkippedArray, type GgufValue, metaString, readGguf } from "../formats/gguf.js";
import { readHfFolder, readHfTokenizerSummary } from "../formats/hf-folder.js";
import { readSafetensors } from "../formats/safetensors.js";
import { type ModelSummary, summarizeGguf, summarizeHfFolder } from "../formats/summary.js";
import { splitParts } from "../discovery/inspect-candidate.js";
import type { ModelSpec } from "../discovery/types.js";

export interface TensorSummary {
  count: number;
  byType: Record<string, { count: number; bytes: number }>;
  /** The first tensors in file order: name, shape (as stored), type. */
  sample: { name: string; shape: number[]; type: string }[];
}

export interface InspectionReport {
  path: string;
  format: "gguf" | "safetensors";
  files: string[];
  summary?: ModelSummary;
  gguf?: { version: number; alignment: number; dataOffset: number; metadataCount: number };
  /** Every metadata key; arrays longer than 8 are summarised. */
  metadata: Record<string, unknown>;
  tensors?: TensorSummary;
  chatTemplate?: string;
  tokenizer?: { kind: string; detail?: string; vocabSize?: number };
  errors: string[];
}

const ARRAY_PREVIEW = 8;

/** How /api/show and `shimmy inspect` render a value: long arrays as their length and first elements. */
function summariseValue(v: GgufValue): unknown {
  if (v instanceof GgufSkippedArray) return v.first.length > 0 ? { array: true, length: v.length, first: v.first.map(summariseValue) } : { array: true, length: v.length };
  if (Array.isArray(v)) {
    if (v.length <= ARRAY_PREVIEW) return v.map(summariseValue);
    return { array: true, length: v.length, first: v.slice(0, ARRAY_PREVIEW).map(summariseValue) };
  }
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "string" && v.length > 200) return `${v.slice(0, 200)}… (${v.length} chars)`;
  return v;
}

function tensorSummary(list: { name: string; shape: number[]; type: string; bytes: number }[]): TensorSummary {
  const byType: TensorSummary["byType"] = {};
  for (const t of list) {
    const e = (byType[t.type] ??= { count: 0, bytes: 0 });
    e.count++;
    e.bytes += t.bytes;
  }
  return { count: list.length, byType, sample: list.slice(0, 12).map(({ name, shape, type }) => ({ name, shape, type })) };
}

function inspectGguf(path: string, files: string[], report: InspectionReport, bounded: boolean): void {
  // Bounded: arrays past the preview are stepped over, not decoded (a vocabulary can be millions of strings).
  const options = bounded ? { maxArrayLength: ARRAY_PREVIEW, previewLength: ARRAY_PREVIEW } : {};
  const parts: GgufFile[] = files.map((f) => readGguf(f, options));
  const first = parts[0]!;
  report.summary = summarizeGguf(parts);
  report.gguf = { version: first.version, alignment: first.alignment, dataOffset: first.dataOffset, metadataCount: first.metadata.size };
  for (const [k, v] of first.metadata) report.metadata[k] = summariseValue(v);
  report.tensors = tensorSummary(parts.flatMap((p) => p.tensors.map((t) => ({ name: t.name, shape: t.dims, type: t.typeName, bytes: t.bytes }))));
  report.chatTemplate = metaString(first, "tokenizer.chat_template");
  const model = metaString(first, "tokenizer.ggml.model");
  if (model) {
    const tokens = first.metadata.get("tokenizer.ggml.tokens");
    const vocabSize = Array.isArray(tokens) || tokens instanceof GgufSkippedArray ? tokens.length : undefined;
    report.tokenizer = { kind: model, detail: metaString(first, "tokenizer.ggml.pre"), vocabSize };
  }
}

function inspectHf(dir: string, report: InspectionReport): void {
  const folder = readHfFolder(dir);
  report.files = folder.weightFiles;
  report.summary = summarizeHfFolder(folder);
  for (const [k, v] of Object.entries(folder.config.raw)) report.metadata[`config.${k}`] = v;
  const tensors = folder.weightFiles.flatMap((f) =>
    readSafetensors(f).tensors.map((t) => ({ name: t.name, shape: t.shape, type: t.dtype, bytes: t.end - t.start })),
  );
  report.tensors = tensorSummary(tensors);
  report.chatTemplate = folder.tokenizerConfig?.chatTemplate;
  const tok = readHfTokenizerSummary(dir);
  if (tok) report.tokenizer = { kind: tok.kind, detail: tok.modelType, vocabSize: tok.vocabSize };
  else report.errors.push("tokenizer.json is missing");
}

export interface InspectOptions {
  /**
   * Step over GGUF arrays longer than the preview instead of decoding them; the report is the
   * same (arrays are summarised either way), without reading a whole vocabulary.
   */
  bounded?: boolean;
}

/** Everything the readers can tell about a model, without loading it. Never throws for a bad file. */
export function inspectModel(target: ModelSpec | string, options: InspectOptions = {}): InspectionReport {
  const path = typeof target === "string" ? target : target.files[0]!;
  const isDir = existsSync(path) && statSync(path).isDirectory();
  const format = typeof target === "string" ? (isDir ? "safetensors" : "gguf") : target.format;
  const report: InspectionReport = { path, format, files: [path], metadata: {}, errors: [] };
  try {
    if (format === "safetensors") inspectHf(path, report);
    else {
      report.files = typeof target === "string" ? splitParts(path) : target.files;
      inspectGguf(path, report.files, report, options.bounded === true);
    }
  } catch (e) {
    report.errors.push((e as Error).message);
  }
  if (typeof target !== "string") {
    if (target.error && !report.errors.includes(target.error)) report.errors.push(target.error);
  }
  return report;
}

const CACHED_REPORTS = 64;
const reportCache = new Map<string, { identity: string; report: InspectionReport }>();

/** Files whose change changes the report: the model files, and an HF folder's JSON files. */
function identityOf(spec: ModelSpec): string {
  const dir = spec.format === "safetensors" ? spec.files[0]! : undefined;
  const paths = dir ? [dir, ...["config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors.index.json"].map((f) => join(dir, f))] : spec.files;
  return paths.map(fileStatKeyOrGone).join("\n");
}

/**
 * The bounded report of a model, read once per file identity (path, size, mtime, inode): /api/show
 * answers from it instead of re-reading the file on every call. The caller must not modify it.
 */
export function cachedInspection(spec: ModelSpec): InspectionReport {
  const key = `${spec.name}\0${spec.files.join("\0")}`;
  const identity = identityOf(spec);
  const hit = reportCache.get(key);
  if (hit && hit.identity === identity) return hit.report;
  const report = inspectModel(spec, { bounded: true });
  reportCache.delete(key);
  reportCache.set(key, { identity, report });
  // Oldest first in a Map: drop it once past the bound.
  if (reportCache.size > CACHED_REPORTS) reportCache.delete(reportCache.keys().next().value!);
  return report;
}
