import { existsSync, statSync } from "node:fs";
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

function summariseValue(v: GgufValue): unknown {
  if (v instanceof GgufSkippedArray) return { array: true, length: v.length };
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

function inspectGguf(path: string, files: string[], report: InspectionReport): void {
  const parts: GgufFile[] = files.map((f) => readGguf(f));
  const first = parts[0]!;
  report.summary = summarizeGguf(parts);
  report.gguf = { version: first.version, alignment: first.alignment, dataOffset: first.dataOffset, metadataCount: first.metadata.size };
  for (const [k, v] of first.metadata) report.metadata[k] = summariseValue(v);
  report.tensors = tensorSummary(parts.flatMap((p) => p.tensors.map((t) => ({ name: t.name, shape: t.dims, type: t.typeName, bytes: t.bytes }))));
  report.chatTemplate = metaString(first, "tokenizer.chat_template");
  const model = metaString(first, "tokenizer.ggml.model");
  if (model) {
    const tokens = first.metadata.get("tokenizer.ggml.tokens");
    report.tokenizer = { kind: model, detail: metaString(first, "tokenizer.ggml.pre"), vocabSize: Array.isArray(tokens) ? tokens.length : undefined };
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

/** Everything the readers can tell about a model, without loading it. Never throws for a bad file. */
export function inspectModel(target: ModelSpec | string): InspectionReport {
  const path = typeof target === "string" ? target : target.format === "safetensors" ? target.files[0]! : target.files[0]!;
  const isDir = existsSync(path) && statSync(path).isDirectory();
  const format = typeof target === "string" ? (isDir ? "safetensors" : "gguf") : target.format;
  const report: InspectionReport = { path, format, files: [path], metadata: {}, errors: [] };
  try {
    if (format === "safetensors") inspectHf(path, report);
    else {
      report.files = typeof target === "string" ? splitParts(path) : target.files;
      inspectGguf(path, report.files, report);
    }
  } catch (e) {
    report.errors.push((e as Error).message);
  }
  if (typeof target !== "string") {
    if (target.error && !report.errors.includes(target.error)) report.errors.push(target.error);
  }
  return report;
}
