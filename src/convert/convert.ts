import { basename, join } from "node:path";
import type { GgufWriteValue } from "../formats/gguf-writer.js";
import { readHfFolder } from "../formats/hf-folder.js";
import { readSafetensorsModel } from "../formats/safetensors.js";
import { str, u32 } from "./architectures/decoder.js";
import { converterFor, SUPPORTED_ARCHITECTURES } from "./architectures/index.js";
import type { TensorPlan } from "./architectures/types.js";
import { ConvertError } from "./errors.js";
import { FILE_TYPE_OF, GGML_TYPE_OF, type OutputType } from "./quantize.js";
import { convertTekkenTokenizer, usesTekken } from "./tekken.js";
import { convertTokenizer } from "./tokenizer.js";
import { type PlannedTensor, startEncodePool, type TensorProgress, writeGgufFile } from "./write-tensors.js";

export type RequestedType = OutputType | "auto";

export type ConvertProgress = TensorProgress;

export interface ConvertResult {
  output: string;
  architecture: string;
  outType: OutputType;
  tensors: number;
  bytesRead: number;
  elapsedMs: number;
  /** Parts of the checkpoint left out on purpose (a multimodal model's vision tower), for the user. */
  skipped: string[];
}

/** "auto" keeps the checkpoint's precision: F32 → f32, F16 → f16, BF16 → bf16 (lossless). */
function resolveType(requested: RequestedType, dtypeBytes: Map<string, number>): OutputType {
  if (requested !== "auto") return requested;
  let dominant = "F32";
  let most = -1;
  for (const [d, b] of dtypeBytes) if (b > most) [dominant, most] = [d, b];
  return dominant === "BF16" ? "bf16" : dominant === "F16" ? "f16" : "f32";
}

/** Tensor type on disk: 1-D stays F32; block types need rows that are a multiple of 32. */
function tensorType(plan: TensorPlan, out: OutputType): OutputType {
  if (plan.keepF32) return "f32";
  if ((out === "q8_0" || out === "q4_0") && plan.shape[plan.shape.length - 1]! % 32 !== 0) return "f16";
  return out;
}

export interface ConvertOptions {
  /**
   * Encode threads; 0 converts on the calling thread (synchronously). Default: one per core for
   * checkpoints over 16 MB, else 0 (starting threads would cost more than they save).
   */
  workers?: number;
}

/**
 * Converts an HF SafeTensors folder to GGUF. Tensors are cut into blocks of whole rows that
 * encode threads read, encode and write with positioned I/O (writeGgufFile); memory is a couple
 * of blocks per thread.
 */
export async function convertHfFolder(dir: string, output: string, requested: RequestedType = "auto", onProgress?: (p: ConvertProgress) => void, options: ConvertOptions = {}): Promise<ConvertResult> {
  const started = performance.now();
  const configPath = join(dir, "config.json");
  const folder = readHfFolder(dir);
  const arch = folder.config.architectures[0];
  const converter = converterFor(arch);
  if (!converter) {
    throw new ConvertError(configPath, `architecture ${arch ? `"${arch}"` : "(none given)"} is not supported; supported: ${SUPPORTED_ARCHITECTURES.join(", ")}`);
  }
  const tekken = usesTekken(folder);
  if (!folder.hasTokenizerJson && !tekken) throw new ConvertError(join(dir, "tokenizer.json"), "missing tokenizer.json (or Mistral's tekken.json), needed to build the GGUF vocabulary");
  const config = converter.textConfig?.(folder.config, configPath) ?? folder.config;
  const checkpoint = readSafetensorsModel(dir);
  const plans = converter.plan(config, checkpoint.tensors, configPath);
  const dtypeBytes = new Map<string, number>();
  // Only the tensors written: buffers a converter drops (BERT's int64 position ids) may be of any dtype.
  for (const t of new Set(plans.flatMap((p) => p.sources))) {
    if (!["F32", "F16", "BF16", "F64"].includes(t.dtype)) throw new ConvertError(t.file, `tensor "${t.name}" has dtype ${t.dtype}; only F32, F16 and BF16 checkpoints can be converted`);
    dtypeBytes.set(t.dtype, (dtypeBytes.get(t.dtype) ?? 0) + (t.end - t.start));
  }
  const outType = resolveType(requested, dtypeBytes);

  const tensors = plans.map((plan): PlannedTensor => {
    const type = tensorType(plan, outType);
    return { plan, type, dims: [...plan.shape].reverse(), ggmlType: GGML_TYPE_OF[type] };
  });
  // Threads start now so that they are up by the time the vocabulary and header are built.
  const pool = startEncodePool(tensors, options.workers);
  try {
    const metadata = new Map<string, GgufWriteValue>([
      ["general.architecture", str(converter.ggufArchitecture)],
      ["general.name", str(typeof folder.config.raw._name_or_path === "string" && folder.config.raw._name_or_path ? basename(folder.config.raw._name_or_path) : basename(dir))],
      ["general.file_type", u32(FILE_TYPE_OF[outType])],
      ["general.quantization_version", u32(2)],
      ["general.converted_by", str("shimmy")],
    ]);
    for (const [k, v] of converter.metadata(config, configPath)) metadata.set(k, v);
    for (const [k, v] of (converter.tokenizer ?? (tekken ? convertTekkenTokenizer : convertTokenizer))(folder, config.vocabSize!)) metadata.set(k, v);

    const bytesRead = await writeGgufFile(output, metadata, tensors, pool, onProgress);
    return { output, architecture: converter.ggufArchitecture, outType, tensors: plans.length, bytesRead, elapsedMs: performance.now() - started, skipped: converter.skipped?.(checkpoint.tensors) ?? [] };
  } finally {
    await pool?.close();
  }
}
