import { GGML_TYPE } from "../../src/formats/ggml-types.js";
import { GgufValueType } from "../../src/formats/gguf.js";
import { type GgufWriteTensor, type GgufWriteValue, writeGguf } from "../../src/formats/gguf-writer.js";

export const str = (value: string): GgufWriteValue => ({ type: GgufValueType.STRING, value });
export const u32 = (value: number): GgufWriteValue => ({ type: GgufValueType.UINT32, value });
export const f32 = (value: number): GgufWriteValue => ({ type: GgufValueType.FLOAT32, value });

export function f32Tensor(name: string, dims: number[], fill = 0.01): GgufWriteTensor {
  const n = dims.reduce((a, b) => a * b, 1);
  return { name, dims, type: GGML_TYPE.F32, data: () => Buffer.from(new Float32Array(n).fill(fill).buffer) };
}

/** A tiny llama-architecture GGUF (not a working model): enough for discovery and pairing. */
export async function writeTinyLlamaGguf(path: string, extra: Record<string, GgufWriteValue> = {}, tensors?: GgufWriteTensor[]): Promise<void> {
  const meta = new Map<string, GgufWriteValue>([
    ["general.architecture", str("llama")],
    ["general.name", str("tiny")],
    ["llama.context_length", u32(128)],
    ["llama.embedding_length", u32(8)],
    ["llama.block_count", u32(1)],
    ...Object.entries(extra),
  ]);
  await writeGguf(path, meta, tensors ?? [f32Tensor("token_embd.weight", [8, 16]), f32Tensor("output_norm.weight", [8])]);
}

/** A LoRA adapter GGUF as llama.cpp's convert_lora_to_gguf writes it (general.type = adapter). */
export async function writeLoraGguf(path: string, extra: Record<string, GgufWriteValue> = {}): Promise<void> {
  const meta = new Map<string, GgufWriteValue>([
    ["general.architecture", str("llama")],
    ["general.type", str("adapter")],
    ["adapter.type", str("lora")],
    ["adapter.lora.alpha", f32(8)],
    ...Object.entries(extra),
  ]);
  await writeGguf(path, meta, [f32Tensor("blk.0.attn_q.weight.lora_a", [8, 4]), f32Tensor("blk.0.attn_q.weight.lora_b", [4, 8])]);
}
