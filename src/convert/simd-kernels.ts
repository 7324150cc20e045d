/**
 * The converter's per-value loops as WebAssembly SIMD (simd-kernels.wat), one instance per thread
 * with a memory of its own: blocks are read into that memory, converted there and written from
 * it, so no value passes through a JavaScript loop.
 */
import { SIMD_KERNELS_WASM_BASE64 } from "./simd-kernels-wasm.js";

/** The part of the WebAssembly API used here (Node has it; @types/node does not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Memory: new (descriptor: { initial: number }) => { buffer: ArrayBuffer };
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** A kernel converts `n` values at byte `src` of the memory to byte `dst`. */
export type Kernel = (src: number, dst: number, n: number) => void;

export interface SimdKernels {
  /** The instance's memory (it never grows, so this buffer and views of it stay valid). */
  memory: ArrayBuffer;
  bytes: Uint8Array;
  bf16ToF16: Kernel;
  f32ToF16: Kernel;
  f32ToBf16: Kernel;
  f32ToQ8_0: Kernel;
  f16ToF32: Kernel;
  bf16ToF32: Kernel;
  f64ToF32: Kernel;
}

/** Bytes a kernel may read or write past the end of the values it was given (whole vectors). */
export const KERNEL_SLACK = 64;

let compiled: object | undefined;

/** Kernels over a fresh memory of at least `bytes` bytes. */
export function instantiateKernels(bytes: number): SimdKernels {
  compiled ??= new wasm.Module(Buffer.from(SIMD_KERNELS_WASM_BASE64, "base64"));
  const memory = new wasm.Memory({ initial: Math.max(1, Math.ceil(bytes / 65536)) });
  const k = new wasm.Instance(compiled, { env: { memory } }).exports as Record<string, Kernel>;
  return {
    memory: memory.buffer, bytes: new Uint8Array(memory.buffer),
    bf16ToF16: k.bf16_to_f16!, f32ToF16: k.f32_to_f16!, f32ToBf16: k.f32_to_bf16!, f32ToQ8_0: k.f32_to_q8_0!,
    f16ToF32: k.f16_to_f32!, bf16ToF32: k.bf16_to_f32!, f64ToF32: k.f64_to_f32!,
  };
}
