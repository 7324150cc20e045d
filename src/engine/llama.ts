import type { Llama } from "node-llama-cpp";
import type { Config } from "../config/config.js";

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
export function runtimeOptionsFor(config: Pick<Config, "gpu" | "threads" | "threadsAlternative" | "batchThreads" | "nativeBuild">): LlamaRuntimeOptions {
  return { gpu: config.gpu, threads: Math.max(config.threads, config.batchThreads, config.threadsAlternative ?? 1), native: config.nativeBuild };
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
    .then(({ getLlama, LlamaLogLevel }) =>
      options.native
        ? getLlama({ ...NATIVE_BUILD, build: "never", maxThreads: options.threads, logLevel: LlamaLogLevel.error, progressLogs: false })
        : getLlama({ gpu: options.gpu, build: "never", maxThreads: options.threads, logLevel: LlamaLogLevel.error, progressLogs: false }),
    )
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
