import { type Command, InvalidArgumentError, Option } from "commander";
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { type Config, type ConfigOverrides, loadConfig, SPECULATIVE_MODES, type SpeculativeMode } from "../config/config.js";
import { gpuMayBeAvailable, nativeBuildExists } from "../engine/native-build.js";

export interface ModelSourceFlags {
  modelDirs?: string[];
  modelPath?: string[];
  defaultLocations?: boolean;
  demo?: boolean;
  threads?: number | "auto";
  threadsBatch?: number;
  ctxSize?: number;
  gpu?: string;
  native?: boolean;
  flashAttention?: boolean;
  isolation?: boolean;
  probeTimeout?: number;
  speculative?: SpeculativeMode;
  draftModel?: string;
  draftAuto?: boolean;
  draftMax?: number;
  draftMin?: number;
}

export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`"${value}" is not a positive integer`);
  return n;
}

export function parseThreads(value: string): number | "auto" {
  return value === "auto" ? "auto" : parsePositiveInt(value);
}

export function parseNonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`"${value}" is not a non-negative integer`);
  return n;
}

/** Flags every command that looks for models shares. */
export function withModelSources(cmd: Command): Command {
  return cmd
    .option("--model-dirs <dirs...>", "extra directories to scan for models (also SHIMMY_MODEL_PATHS)")
    .option("--model-path <paths...>", "explicit model files (GGUF) or HF folders")
    .option("--no-default-locations", "scan only the given dirs/paths, not ./models, Ollama, the HF cache or LM Studio (nor the built-in demo model)")
    .option("--no-demo", `never list the built-in demo model "shimmy-demo" (listed only while no other servable model is found; SHIMMY_DEMO=0)`);
}

export function withEngineOptions(cmd: Command): Command {
  return cmd
    .option("--threads <n|auto>", "CPU threads for one-token steps, a single stream generating: a fixed count, or auto (default): all cores, max 16 — half of them on the prebuilt binary — or the other of all/half, whichever measures faster (SHIMMY_THREADS)", parseThreads)
    .option("--threads-batch <n>", "CPU threads for prompts and batched streams (default: --threads if given, else all cores, max 16; SHIMMY_THREADS_BATCH)", parsePositiveInt)
    .option("--ctx-size <n>", "context size per sequence (default: min(model's training context, 4096))", parsePositiveInt)
    .addOption(new Option("--gpu <mode>", "GPU backend: auto or off (SHIMMY_GPU)").choices(["auto", "off"]))
    .option("--native", "use the CPU backend compiled by `shimmy build-native` (the default once it exists; SHIMMY_NATIVE=1)")
    .option("--no-native", "use node-llama-cpp's prebuilt binary even when a native build exists (SHIMMY_NATIVE=0)")
    .option("--no-flash-attention", "disable llama.cpp flash attention (SHIMMY_FLASH_ATTENTION=0)")
    .option("--no-isolation", "load model files without first trying them in a child process: a file that makes llama.cpp abort then ends this process (SHIMMY_ISOLATION=0)")
    .option("--probe-timeout <seconds>", "time a new model file's trial in a child process may take (default 300; SHIMMY_PROBE_TIMEOUT)", parsePositiveInt)
    .addOption(new Option("--speculative <mode>", "speculative decoding: ngram drafts tokens from the prompt and the text so far, draft with --draft-model, checked several per step; auto: the draft model if set, else ngram, while it measures faster than without; off (default) (SHIMMY_SPECULATIVE)").choices(SPECULATIVE_MODES))
    .option("--draft-model <name>", "a smaller model with the same vocabulary that drafts tokens (a discovered model's name or a GGUF path); implies --speculative draft unless another mode is given (SHIMMY_DRAFT_MODEL)")
    .option("--draft-auto", "without --draft-model: each model drafts with a smaller discovered model of the same architecture and vocabulary, when there is one; implies --speculative draft unless another mode is given (SHIMMY_DRAFT_AUTO=1)")
    .option("--draft-max <n>", "draft tokens checked per step at most (default 8; SHIMMY_DRAFT_MAX)", parsePositiveInt)
    .option("--draft-min <n>", "shortest draft worth checking (default 1; SHIMMY_DRAFT_MIN)", parsePositiveInt);
}

export function configFrom(flags: ModelSourceFlags, extra: ConfigOverrides = {}): Config {
  return loadConfig(
    {
      modelDirs: flags.modelDirs,
      modelPaths: flags.modelPath,
      scanDefaultLocations: flags.defaultLocations === false ? false : undefined,
      demo: flags.demo === false ? false : undefined,
      threads: flags.threads,
      batchThreads: flags.threadsBatch,
      ctxSize: flags.ctxSize,
      gpu: flags.gpu === undefined ? undefined : flags.gpu === "auto" ? "auto" : false,
      nativeBuild: flags.native,
      flashAttention: flags.flashAttention === false ? false : undefined,
      isolation: flags.isolation === false ? false : undefined,
      probeTimeoutMs: flags.probeTimeout === undefined ? undefined : flags.probeTimeout * 1000,
      speculative: flags.speculative,
      draftModel: flags.draftModel,
      draftAuto: flags.draftAuto,
      draftMax: flags.draftMax,
      draftMin: flags.draftMin,
      ...extra,
    },
    process.env,
    availableParallelism(),
    // The native-build default looks at this machine.
    { gpuMayBeAvailable, nativeBuildExists },
  );
}

/** A command's model argument may be a file or folder on disk even when no search dir holds it. */
export function includeTargetPath(config: Config, target: string): Config {
  const path = resolve(target);
  if (existsSync(path) && !config.modelPaths.includes(path)) config.modelPaths.push(path);
  return config;
}
