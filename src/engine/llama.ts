import { getLlama, type Llama, LlamaLogLevel } from "node-llama-cpp";

export interface LlamaRuntimeOptions {
  gpu: "auto" | false;
  threads: number;
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
  const llama = getLlama({
    gpu: options.gpu,
    build: "never",
    maxThreads: options.threads,
    logLevel: LlamaLogLevel.error,
    progressLogs: false,
  });
  shared = { key, llama };
  llama.catch(() => {
    if (shared?.llama === llama) shared = undefined;
  });
  return llama;
}
