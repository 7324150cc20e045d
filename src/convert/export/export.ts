import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { type GgufFile, type GgufTensorInfo, metaString, readGguf, readGgufTensorData } from "../../formats/gguf.js";
import { parseHfConfig } from "../../formats/hf-folder.js";
import type { SafetensorsTensor } from "../../formats/safetensors.js";
import { converterFor } from "../architectures/index.js";
import { ConvertError } from "../errors.js";
import { f16ToF32BitsLookup, f32BitsToF16 } from "../half.js";
import { DEQUANTIZABLE_TYPES, dequantize, isDequantizable } from "./dequantize.js";
import { COMPUTED_TENSORS, EXPORT_FAMILIES, generationConfig, hfConfig, hfTensorName } from "./hf-config.js";
import { tokenizerFiles } from "./tokenizer-files.js";
import { type ExportTensor, planShards, type Shard, tensorBytes, type WeightDtype, type WeightsProgress, writeShards } from "./write-weights.js";

/** `auto` keeps float tensors as stored and dequantises the rest to F32 (the values llama.cpp computes with). */
export type ExportType = "auto" | "f32" | "f16" | "bf16";
export const EXPORT_TYPES: readonly ExportType[] = ["auto", "f32", "f16", "bf16"];

/** Largest shard before the weights are split (transformers' default for save_pretrained). */
export const DEFAULT_MAX_SHARD_BYTES = 5 * 1000 ** 3;

export interface ExportOptions {
  type?: ExportType;
  maxShardBytes?: number;
  onProgress?: (p: WeightsProgress) => void;
}

export interface ExportResult {
  output: string;
  architecture: string;
  hfArchitecture: string;
  /** Tensors written by SafeTensors dtype. */
  dtypes: Record<string, number>;
  tensors: number;
  files: string[];
  bytesRead: number;
  /** GGUF metadata the HF folder cannot carry (named keys), for the user to know. */
  notes: string[];
  elapsedMs: number;
}

const FLOAT_DTYPE: Readonly<Record<string, WeightDtype>> = { F32: "F32", F16: "F16", BF16: "BF16" };
const TORCH_DTYPE: Readonly<Record<WeightDtype, string>> = { F32: "float32", F16: "float16", BF16: "bfloat16" };

function dtypeFor(t: GgufTensorInfo, type: ExportType): WeightDtype {
  if (type !== "auto") return type.toUpperCase() as WeightDtype;
  return FLOAT_DTYPE[t.typeName] ?? "F32";
}

/** Every value is exactly a `dtype` value (so storing it as one loses nothing). */
function fitsExactly(values: Float32Array, dtype: "F16" | "BF16"): boolean {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  if (dtype === "BF16") return bits.every((b) => (b & 0xffff) === 0);
  const back = f16ToF32BitsLookup();
  return bits.every((b) => back[f32BitsToF16(b)] === b);
}

/**
 * Under `auto`, vectors (norms, biases) that the HF → GGUF converter widened to F32 go back to
 * the checkpoint's 16-bit dtype when every value fits exactly, as HF checkpoints keep one dtype.
 */
function narrowVectors(f: GgufFile, weights: readonly ExportTensor[]): void {
  const bytes: Record<string, number> = {};
  for (const w of weights) if (w.shape.length > 1) bytes[w.dtype] = (bytes[w.dtype] ?? 0) + tensorBytes(w);
  const dominant = Object.entries(bytes).sort((a, b) => b[1] - a[1])[0]?.[0];
  if (dominant !== "F16" && dominant !== "BF16") return;
  for (const w of weights) {
    if (w.shape.length === 1 && w.sourceType === "F32" && fitsExactly(readF32Tensor(f, w.source), dominant)) w.dtype = dominant;
  }
}

function readF32Tensor(f: GgufFile, t: GgufTensorInfo): Float32Array {
  if (!isDequantizable(t.typeName)) throw new ConvertError(f.path, `tensor "${t.name}" is ${t.typeName}`);
  const out = new Float32Array(t.elements);
  dequantize(t.typeName, readGgufTensorData(f, t), t.elements, out);
  return out;
}

/**
 * Checks the export against the HF → GGUF converter: the folder's config.json must plan exactly
 * the GGUF's tensors with the same shapes, and give the same `<arch>.*` metadata where the GGUF
 * has a key. Returns the converter's q/k reordering per GGUF name, and the keys it would not carry.
 */
function checkAgainstConverter(f: GgufFile, arch: string, configPath: string, tensors: readonly ExportTensor[]): { permute: Map<string, number>; notCarried: string[] } {
  const config = parseHfConfig(configPath);
  const converter = converterFor(config.architectures[0])!;
  const fake = new Map<string, SafetensorsTensor>(tensors.map((t) => [t.name, { name: t.name, dtype: t.dtype, shape: t.shape, start: 0, end: tensorBytes(t), file: configPath }]));
  const plans = converter.plan(config, fake, configPath);
  const ggufNames = new Set(f.tensors.map((t) => t.name));
  const permute = new Map<string, number>();
  for (const plan of plans) {
    if (!ggufNames.has(plan.name)) throw new ConvertError(f.path, `the exported folder would convert back with a tensor "${plan.name}" the GGUF does not have`);
    if (plan.permuteHeads) permute.set(plan.name, plan.permuteHeads);
  }
  const planned = new Set(plans.map((p) => p.name));
  for (const name of ggufNames) if (!planned.has(name)) throw new ConvertError(f.path, `tensor "${name}" would be lost: the ${arch} export has no place for it`);

  const notCarried: string[] = [];
  const metadata = converter.metadata(config, configPath);
  for (const [key, value] of f.metadata) {
    if (!key.startsWith(`${arch}.`)) continue;
    const again = metadata.get(key);
    if (again === undefined) {
      notCarried.push(key);
      continue;
    }
    const same = typeof value === "number" && typeof again.value === "number" ? Math.fround(value) === Math.fround(again.value) : JSON.stringify(value) === JSON.stringify(again.value);
    if (!same) throw new ConvertError(f.path, `${key} is ${JSON.stringify(value)} but the exported config.json would give ${JSON.stringify(again.value)}`);
  }
  return { permute, notCarried };
}

/** The folder must be new or empty: an export never mixes its files with others. */
const SHARD_INDEX = "model.safetensors.index.json";
/** Weight files transformers would load from a folder (a single file, shards, their index). */
const WEIGHT_FILE = /^model(-\d+-of-\d+)?\.safetensors(\.index\.json)?$/;

/**
 * Checks the output folder: new or empty, or with `force` any folder whose weight files the
 * export replaces — a weight file it would leave (an old single file beside new shards, or
 * shards of another count) would be loaded in place of, or beside, the export.
 */
function prepareOutput(dir: string, force: boolean, weightFiles: ReadonlySet<string>): void {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new ConvertError(dir, "exists and is not a directory");
    const present = readdirSync(dir);
    if (present.length > 0 && !force) throw new ConvertError(dir, "is not empty; pass --force to write into it");
    const stale = present.filter((name) => WEIGHT_FILE.test(name) && !weightFiles.has(name));
    if (stale.length > 0) throw new ConvertError(dir, `holds weight files this export would not replace (${stale.join(", ")}); remove them or choose another folder`);
  }
  mkdirSync(dir, { recursive: true });
}

/**
 * Exports a GGUF (llama, qwen2, qwen3) to a Hugging Face folder: config.json,
 * generation_config.json, tokenizer.json, tokenizer_config.json and SafeTensors weights
 * (sharded past `maxShardBytes`, with model.safetensors.index.json). Weights stream through a few
 * blocks of memory; q/k rows go back to HF's rotate-half order.
 */
export function exportGguf(input: string, outDir: string, options: ExportOptions & { force?: boolean } = {}): ExportResult {
  const started = performance.now();
  const type = options.type ?? "auto";
  const f = readGguf(input);
  const arch = metaString(f, "general.architecture") ?? "(none)";
  const family = EXPORT_FAMILIES[arch];
  if (!family) throw new ConvertError(input, `architecture "${arch}" cannot be exported to SafeTensors (supported: ${Object.keys(EXPORT_FAMILIES).join(", ")})`);
  for (const t of f.tensors) {
    if (!isDequantizable(t.typeName)) throw new ConvertError(input, `tensor "${t.name}" is ${t.typeName}, which cannot be exported (supported: ${DEQUANTIZABLE_TYPES.join(", ")})`);
  }

  const weights: ExportTensor[] = [];
  for (const t of f.tensors) {
    if (COMPUTED_TENSORS.has(t.name)) continue;
    const name = hfTensorName(t.name);
    if (!name) throw new ConvertError(input, `tensor "${t.name}" has no Hugging Face counterpart in the ${family.hfArchitecture} layout`);
    weights.push({ name, source: t, sourceType: t.typeName as ExportTensor["sourceType"], dtype: dtypeFor(t, type), shape: [...t.dims].reverse() });
  }
  if (type === "auto") narrowVectors(f, weights);
  const ropeFreqs = f.tensors.find((t) => t.name === "rope_freqs.weight");
  const tokenizer = tokenizerFiles(f);

  const bytesByDtype: Record<string, number> = {};
  const dtypes: Record<string, number> = {};
  for (const w of weights) {
    bytesByDtype[w.dtype] = (bytesByDtype[w.dtype] ?? 0) + tensorBytes(w);
    dtypes[w.dtype] = (dtypes[w.dtype] ?? 0) + 1;
  }
  const torchDtype = TORCH_DTYPE[Object.entries(bytesByDtype).sort((a, b) => b[1] - a[1])[0]![0] as WeightDtype];
  const config = hfConfig({
    file: f,
    tokenizer,
    untiedHead: f.tensors.some((t) => t.name === "output.weight"),
    attentionBias: f.tensors.some((t) => t.name === "blk.0.attn_q.bias"),
    ropeFactors: ropeFreqs ? readF32Tensor(f, ropeFreqs) : undefined,
    torchDtype,
  });
  tokenizer.tokenizerConfig.model_max_length = config.max_position_embeddings;

  const shards: Shard[] = planShards(weights, options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES);
  const created = !existsSync(outDir);
  prepareOutput(outDir, options.force === true, new Set(shards.map((s) => s.file).concat(shards.length > 1 ? [SHARD_INDEX] : [])));
  // Written beside the folder first and moved in once complete: a failed export leaves the folder as it was.
  const staging = mkdtempSync(join(dirname(outDir), `.${basename(outDir)}.export-`));
  const written: string[] = [];
  const write = (name: string, value: unknown): void => {
    writeFileSync(join(staging, name), `${JSON.stringify(value, null, 2)}\n`);
    written.push(name);
  };
  try {
    write("config.json", config);
    const { permute, notCarried } = checkAgainstConverter(f, arch, join(staging, "config.json"), weights);
    for (const w of weights) w.permuteHeads = permute.get(w.source.name);
    write("generation_config.json", generationConfig(f, tokenizer));
    write("tokenizer.json", tokenizer.tokenizerJson);
    write("tokenizer_config.json", tokenizer.tokenizerConfig);

    const bytesRead = writeShards(input, f.dataOffset, staging, shards, options.onProgress);
    written.push(...shards.map((s) => s.file));
    if (shards.length > 1) {
      const weightMap: Record<string, string> = {};
      for (const s of shards) for (const t of s.tensors) weightMap[t.name] = s.file;
      write(SHARD_INDEX, { metadata: { total_size: weights.reduce((n, w) => n + tensorBytes(w), 0) }, weight_map: weightMap });
    }
    for (const name of written) renameSync(join(staging, name), join(outDir, name));
    const notes = notCarried.length ? [`not carried into config.json: ${notCarried.join(", ")}`] : [];
    return { output: outDir, architecture: arch, hfArchitecture: family.hfArchitecture, dtypes, tensors: weights.length, files: written, bytesRead, notes, elapsedMs: performance.now() - started };
  } catch (e) {
    if (created) rmSync(outDir, { recursive: true, force: true });
    throw e;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
