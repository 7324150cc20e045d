import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readSafetensors, readSafetensorsData } from "../../src/formats/safetensors.js";
import { type SafetensorsWriteTensor, writeSafetensors } from "../../src/formats/safetensors-writer.js";
import { xorshiftFloats } from "../../src/convert/random-weights.js";

export interface FolderEdit {
  /** Changes to config.json. */
  config?: Record<string, unknown>;
  /** Rewrites the tensor list (names, shapes, data) before saving. */
  tensors?: (tensors: SafetensorsWriteTensor[]) => SafetensorsWriteTensor[];
  /** Split the weights into this many shards with an index. */
  shards?: number;
}

/** Copies an HF folder to `dest`, applying edits: the way tests build variants of the shared models. */
export function copyHfFolder(src: string, dest: string, edit: FolderEdit = {}): string {
  mkdirSync(dest, { recursive: true });
  for (const f of readdirSync(src)) if (!f.endsWith(".safetensors") && f !== "config.json") copyFileSync(join(src, f), join(dest, f));
  const config = { ...JSON.parse(readFileSync(join(src, "config.json"), "utf8")), ...edit.config };
  writeFileSync(join(dest, "config.json"), JSON.stringify(config, null, 2));
  let tensors = readSafetensors(join(src, "model.safetensors")).tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: readSafetensorsData(t) }));
  if (edit.tensors) tensors = edit.tensors(tensors);
  const shards = edit.shards ?? 1;
  if (shards === 1) {
    writeSafetensors(join(dest, "model.safetensors"), tensors);
  } else {
    const per = Math.ceil(tensors.length / shards);
    const weightMap: Record<string, string> = {};
    for (let i = 0; i < shards; i++) {
      const name = `model-${String(i + 1).padStart(5, "0")}-of-${String(shards).padStart(5, "0")}.safetensors`;
      const part = tensors.slice(i * per, (i + 1) * per);
      writeSafetensors(join(dest, name), part);
      for (const t of part) weightMap[t.name] = name;
    }
    writeFileSync(join(dest, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  }
  return dest;
}

export function f32Data(values: Float32Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

export function asF32(t: SafetensorsWriteTensor): Float32Array {
  if (t.dtype !== "F32") throw new Error(`fixture expects F32, got ${t.dtype}`);
  return new Float32Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength));
}

/** Deterministic pseudo-random F32 tensor (for synthetic architectures). */
export function randomTensor(name: string, shape: number[], seed: number, scale = 0.05): SafetensorsWriteTensor {
  return { name, dtype: "F32", shape, data: f32Data(xorshiftFloats(shape.reduce((a, b) => a * b, 1), seed, 2 * scale)) };
}
