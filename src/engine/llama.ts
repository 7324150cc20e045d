import type { Llama, LlamaOptions } from "node-llama-cpp";
import type { Config } from "../config/config.js";
import { CPU_VARIANT_OPTION, installCpuVariant, loadedCpuLibrary } from "./cpu-variants.js";

/**
 * node-llama-cpp is imported on first use, not at start-up: importing it costs ~0.9 s and ~30 MB,
 * which would otherwise delay `shimmy serve`'s first /health answer and every CLI command.
 */
export const loadNodeLlamaCpp = () => import("node-llama-cpp");

export interface LlamaRuntimeOptions {
  gpu: "auto" | false;
  threads: number;
  /** Use the CPU backend compiled by `shimmy build-native` (see NATIVE_CMAKE_OPTIONS). */
  native?: boolean;
  /** Load only this prebuilt CPU library (engine/cpu-variants.ts); CPU-only. */
  cpuVariant?: string;
}

/**
 * The CPU build `shimmy build-native` compiles from the llama.cpp source node-llama-cpp ships:
 * tuned for this machine's instruction set, with OpenMP's persistent worker threads instead of
 * the prebuilt binary's thread-per-token spawning.
 */
export const NATIVE_CMAKE_OPTIONS: Record<string, string> = { GGML_NATIVE: "ON", GGML_OPENMP: "ON" };

/** How getLlama names the native build: building and loading must say it the same way to meet. */
const NATIVE_BUILD = { gpu: false, usePrebuiltBinaries: false, cmakeOptions: NATIVE_CMAKE_OPTIONS } as const;

/** The runtime a Config asks for; its thread budget covers both thread counts. */
export function runtimeOptionsFor(config: Pick<Config, "gpu" | "threads" | "threadsAlternative" | "batchThreads" | "nativeBuild" | "cpuVariant">): LlamaRuntimeOptions {
  return { gpu: config.gpu, threads: Math.max(config.threads, config.batchThreads, config.threadsAlternative ?? 1), native: config.nativeBuild, cpuVariant: config.cpuVariant };
}

/**
 * The prebuilt binary with only one CPU library. llama.cpp skips a library whose instructions this
 * CPU lacks, which would surface later as a bare "failed to load model"; on Linux the memory map
 * tells at once.
 */
async function loadCpuVariant(getLlama: typeof import("node-llama-cpp").getLlama, variant: string, common: Omit<LlamaOptions, "gpu">): Promise<Llama> {
  // Made on first use, so that --cpu-variant works without `shimmy tune-cpu`.
  installCpuVariant(variant);
  const llama = await getLlama({ ...common, gpu: false, usePrebuiltBinaries: false, cmakeOptions: { [CPU_VARIANT_OPTION]: variant } });
  if (process.platform === "linux" && loadedCpuLibrary() !== variant) {
    await llama.dispose();
    throw new Error(`llama.cpp did not load the "${variant}" CPU library: this CPU lacks its instructions; choose another with --cpu-variant (or SHIMMY_CPU_VARIANT), or let \`shimmy tune-cpu\` measure which run`);
  }
  return llama;
}

let shared: { key: string; llama: Promise<Llama> } | undefined;

/**
 * One node-llama-cpp runtime per process. `build: "never"` means a missing binary is an error,
 * never a 7-minute compile at request time; maxThreads is set because node-llama-cpp's default
 * (max(cores, 4)) oversubscribes small machines.
 */
export function getRuntime(options: LlamaRuntimeOptions): Promise<Llama> {
  const key = JSON.stringify(options);
  if (shared && shared.key === key) return shared.llama;
  const llama = loadNodeLlamaCpp()
    .then(({ getLlama, LlamaLogLevel }) => {
      const common = { build: "never", maxThreads: options.threads, logLevel: LlamaLogLevel.error, progressLogs: false } as const;
      if (options.native) return getLlama({ ...NATIVE_BUILD, ...common });
      if (options.cpuVariant !== undefined) return loadCpuVariant(getLlama, options.cpuVariant, common);
      return getLlama({ gpu: options.gpu, ...common });
    })
    .catch((e: unknown) => {
      if (options.native) throw new Error(`no native build found (${(e as Error).message}); run \`shimmy build-native\` again, or use the prebuilt binary with --no-native / SHIMMY_NATIVE=0`);
      throw e;
    });
  shared = { key, llama };
  llama.catch(() => {
    if (shared?.llama === llama) shared = undefined;
  });
  return llama;
}

/** Compiles the native CPU backend (several minutes); node-llama-cpp keeps it for later runs. */
export async function buildNativeRuntime(threads: number): Promise<Llama> {
  const { getLlama, LlamaLogLevel } = await loadNodeLlamaCpp();
  return getLlama({ ...NATIVE_BUILD, build: "forceRebuild", maxThreads: threads, progressLogs: true, logLevel: LlamaLogLevel.warn });
}
