import { existsSync } from "node:fs";
import { readGguf } from "../formats/gguf.js";
import { writableMetadata } from "../formats/gguf-writer.js";
import { u32 } from "./architectures/decoder.js";
import type { TensorPlan } from "./architectures/types.js";
import { ConvertError } from "./errors.js";
import { FILE_TYPE_OF, GGML_TYPE_OF, type OutputType } from "./quantize.js";
import { type PlannedTensor, startEncodePool, type TensorProgress, writeGgufFile } from "./write-tensors.js";

/** The GGUF tensor types a re-encode can read: the float types (a quantized tensor cannot be re-quantized without loss piling up). */
const READABLE: Record<string, string> = { F32: "F32", F16: "F16", BF16: "BF16" };

export interface QuantizeResult {
  output: string;
  outType: OutputType;
  tensors: number;
  bytesRead: number;
  elapsedMs: number;
}

/**
 * Re-encodes a float GGUF (F32 / F16 / BF16 tensors) as `type`, through the converter's data path:
 * metadata copied as it is (general.file_type updated), 1-D tensors kept F32, rows that are not a
 * multiple of the 32-value block kept F16 under q8_0 / q4_0 — the same rules as `shimmy convert`.
 */
export async function quantizeGguf(input: string, output: string, type: OutputType, onProgress?: (p: TensorProgress) => void, options: { workers?: number } = {}): Promise<QuantizeResult> {
  const started = performance.now();
  if (existsSync(output)) throw new ConvertError(output, "the output exists");
  const file = readGguf(input);
  const tensors = file.tensors.map((t): PlannedTensor => {
    const dtype = READABLE[t.typeName];
    if (!dtype) throw new ConvertError(input, `tensor "${t.name}" is ${t.typeName}; only GGUFs of F32, F16 and BF16 tensors can be re-encoded`);
    const shape = [...t.dims].reverse();
    const start = file.dataOffset + t.offset;
    const plan: TensorPlan = { name: t.name, shape, sources: [{ name: t.name, dtype, shape, start, end: start + t.bytes, file: input }], keepF32: t.dims.length === 1 };
    const tensorType: OutputType = plan.keepF32 ? "f32" : (type === "q8_0" || type === "q4_0") && t.dims[0]! % 32 !== 0 ? "f16" : type;
    return { plan, type: tensorType, dims: t.dims, ggmlType: GGML_TYPE_OF[tensorType] };
  });
  const metadata = writableMetadata(file);
  metadata.set("general.file_type", u32(FILE_TYPE_OF[type]));
  const pool = startEncodePool(tensors, options.workers);
  try {
    const bytesRead = await writeGgufFile(output, metadata, tensors, pool, onProgress);
    return { output, outType: type, tensors: tensors.length, bytesRead, elapsedMs: performance.now() - started };
  } finally {
    await pool?.close();
  }
}
