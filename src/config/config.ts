import { readFileSync } from "node:fs";
import { homedir, totalmem } from "node:os";
import { delimiter, join, resolve } from "node:path";

/**
 * Everything Shimmy can be told, in one typed object. Sources, strongest first: command-line
 * flags, environment variables, defaults. Documented in docs/configuration.md.
 */
export interface Config {
  /** Directories scanned recursively for GGUF files and HF folders. */
  modelDirs: string[];
  /** Individual model files (GGUF) or HF folders named explicitly. */
  modelPaths: string[];
  /** SHIMMY_BASE_GGUF + SHIMMY_LORA_GGUF: one model served with one adapter. */
  baseGguf?: string;
  loraGguf?: string;
  /** Whether to look in the well-known stores (HF cache, Ollama, LM Studio) and ./models. */
  scanDefaultLocations: boolean;
  maxScanDepth: number;
  /** Serve the built-in demo model (assets/demo) while no other servable model is found. */
  demo: boolean;
  /** While serving: watch the model folders and rescan (debounced) when files change. */
  watchModels: boolean;
  /** While serving: rescan every model location this often anyway (ms); 0 = never. */
  rescanIntervalMs: number;
  home: string;
  env: NodeJS.ProcessEnv;

  host: string;
  /** 0 lets the OS choose; `bindAuto` walks 11435…11535 first. */
  port: number;
  bindAuto: boolean;
  /** Per-sequence context size; undefined = min(model's training context, ctxCap). */
  ctxSize?: number;
  ctxCap: number;
  /** Threads for one-token decode steps (one stream generating); the first count tried when `threadsAlternative` is set. */
  threads: number;
  /**
   * Unless a count was chosen (`--threads N`): the other count one-token steps may use, whichever
   * the decode loop measures faster (engine/thread-chooser.ts); undefined = `threads` always.
   */
  threadsAlternative?: number;
  /** Threads for steps of several tokens: prompts, and streams batched together. */
  batchThreads: number;
  batchSize?: number;
  /** Sequences (slots) per loaded model. */
  parallel: number;
  gpu: "auto" | false;
  /** Largest request body accepted, in bytes (also a WebSocket message). */
  bodyLimit: number;
  /** Most chat messages one request may carry: bounds the time rendering the chat template takes. */
  maxMessages: number;
  /** How long shutdown waits for in-flight requests before cutting them. */
  drainTimeoutMs: number;
  /** Where converted SafeTensors models are cached ($SHIMMY_CACHE_DIR, ~/.cache/shimmy). */
  cacheDir: string;
  /** Output type for SafeTensors conversion: auto keeps the checkpoint's precision. */
  convertType: "auto" | "f32" | "f16" | "bf16" | "q8_0" | "q4_0";
  /** Requests that may wait for a slot per model; past that, 503 + Retry-After. */
  maxQueue: number;
  /** Wall-clock limit for one request, queueing included. */
  requestTimeoutMs: number;
  /** Models loaded at once; the least recently used idle one is unloaded first. */
  maxLoadedModels: number;
  /** Bytes of model files (plus their KV estimate) kept loaded at once. */
  memoryBudgetBytes: number;
  /** Idle time before a model is unloaded; 0 = right after its request, negative = never. */
  keepAliveMs: number;
  /** Use the CPU backend built by `shimmy build-native` instead of the prebuilt one. */
  nativeBuild: boolean;
  /** llama.cpp flash attention where the model supports it (measured +25% decode on CPU). */
  flashAttention: boolean;
  /** Keys a request must present (`Authorization: Bearer` or `x-api-key`); empty = none needed. docs/security.md. */
  apiKeys: string[];
  /** Whether /health and /v1/health need a key too (when keys are set). */
  healthRequiresKey: boolean;
  /** Browser origins allowed beyond the local defaults: exact origins or `*` globs; "*" = any. */
  corsOrigins: string[];
  /** Host header names allowed beyond loopback, the bound address and this machine's name; "*" = any. */
  allowedHosts: string[];
  /** Time a client has to send a request's headers, then the whole request; slower clients get 408. 0 = no limit. */
  headersTimeoutMs: number;
  readTimeoutMs: number;
  /**
   * Try every new or changed model file in a short-lived child process before loading it here, so
   * a file that makes llama.cpp abort cannot take the server down (docs/security.md, "Crash isolation").
   */
  isolation: boolean;
  /** How long that trial may take before the file is refused as hanging. */
  probeTimeoutMs: number;
  /**
   * Keep the KV state of long prompt prefixes on disk (docs/configuration.md, "Prompt cache"): saved
   * when a slot's long prefix is displaced, when its model unloads and when the server stops;
   * restored into a slot for a later prompt that shares it, after an unload or a restart too.
   */
  promptCache: boolean;
  /** Where those states are kept (default: `prompt-cache` in `cacheDir`). */
  promptCacheDir: string;
  /** Bytes of saved states kept at most; the least recently used go first. */
  promptCacheMaxBytes: number;
  /** Shortest prefix worth saving or restoring, in tokens. */
  promptCacheMinTokens: number;
  /**
   * Speculative decoding (docs/configuration.md, "Speculative decoding"): `ngram` drafts tokens by
   * prompt lookup and the model checks several per step; `draft` drafts with `draftModel`; `auto`
   * drafts (with the draft model when one is set, else by prompt lookup) only while steps with
   * drafts measure cheaper per token than steps without; `off` decodes one token per step.
   */
  speculative: SpeculativeMode;
  /** A smaller model with the target's vocabulary that drafts tokens (a discovered model's name or a GGUF path). */
  draftModel?: string;
  /** Without `draftModel`: each model drafts with a smaller discovered model of its family, when there is one (draft-pairing.ts). */
  draftAuto: boolean;
  /** Draft tokens per step at most, and the shortest draft worth checking. */
  draftMax: number;
  draftMin: number;
}

export const SPECULATIVE_MODES = ["auto", "off", "ngram", "draft"] as const;
export type SpeculativeMode = (typeof SPECULATIVE_MODES)[number];

export const DEFAULT_PORT = 11435;
export const AUTO_PORT_LAST = 11535;

/** Splits a path list on the platform delimiter and on ';' (what the original Shimmy accepted). */
export function splitPathList(value: string | undefined): string[] {
  if (!value) return [];
  return value
    .split(delimiter)
    .flatMap((p) => p.split(";"))
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
}

/**
 * Default thread counts for one-token steps and for batches: every core, at most 16 (where
 * llama.cpp's CPU matmuls stop scaling on typical machines) — except one-token steps on the
 * prebuilt binary, which get half the cores. That binary has no persistent thread pool: each
 * decode creates its worker threads, and with no idle core left a new worker can land on the
 * core of the thread it meets at every spin barrier. Measured on 2 cores over HTTP (100M Q8_0,
 * 128-token streams, interleaved): 2 threads ran most streams at 104–191 tok/s but a quarter to
 * a third of them at 46–67 tok/s for the whole stream; 1 thread ran every stream at 121–169.
 * Batch steps are long enough that this did not show (8 streams: 343–375 tok/s on 2 threads),
 * and the native build's OpenMP team is persistent (2 threads: 154–209, no such streams).
 */
export function defaultThreads(cores: number, nativeBuild: boolean): { threads: number; batchThreads: number } {
  const all = Math.max(1, Math.min(16, cores));
  return { threads: nativeBuild ? all : Math.max(1, Math.floor(all / 2)), batchThreads: all };
}

export interface ConfigOverrides {
  modelDirs?: string[];
  modelPaths?: string[];
  scanDefaultLocations?: boolean;
  demo?: boolean;
  watchModels?: boolean;
  rescanIntervalMs?: number;
  host?: string;
  port?: number;
  bindAuto?: boolean;
  ctxSize?: number;
  /** A fixed count for one-token steps (and batches, unless batchThreads); "auto" or unset: the default count or the other of all/half the cores, whichever measures faster. */
  threads?: number | "auto";
  batchThreads?: number;
  batchSize?: number;
  parallel?: number;
  gpu?: "auto" | false;
  convertType?: Config["convertType"];
  maxQueue?: number;
  requestTimeoutMs?: number;
  maxLoadedModels?: number;
  memoryBudgetBytes?: number;
  keepAliveMs?: number;
  nativeBuild?: boolean;
  flashAttention?: boolean;
  /** Keys given as flags; with `apiKeyFile` they replace SHIMMY_API_KEY / SHIMMY_API_KEY_FILE. */
  apiKeys?: string[];
  apiKeyFile?: string;
  healthRequiresKey?: boolean;
  corsOrigins?: string[];
  allowedHosts?: string[];
  headersTimeoutMs?: number;
  readTimeoutMs?: number;
  bodyLimit?: number;
  maxMessages?: number;
  drainTimeoutMs?: number;
  isolation?: boolean;
  probeTimeoutMs?: number;
  promptCache?: boolean;
  promptCacheDir?: string;
  promptCacheMaxBytes?: number;
  promptCacheMinTokens?: number;
  speculative?: SpeculativeMode;
  draftModel?: string;
  draftAuto?: boolean;
  draftMax?: number;
  draftMin?: number;
}

/**
 * Ollama-style durations: "5m", "30s", "1h30m", "250ms", a plain number of seconds, "0", or a
 * negative number (forever). Returns milliseconds.
 */
export function parseDuration(value: string | number): number {
  return inDurationRange(value, parseDurationMs(value));
}

/** Go's time.Duration limit (~292 years), which Ollama's keep_alive shares; beyond it, dates overflow too. */
const MAX_DURATION_MS = Number(2n ** 63n / 1_000_000n);

function inDurationRange(value: string | number, ms: number): number {
  if (!(Math.abs(ms) <= MAX_DURATION_MS)) throw new Error(`"${value}" is out of range (a duration is at most 2562047h)`);
  return ms;
}

function parseDurationMs(value: string | number): number {
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`${value} is not a duration`);
    return value * 1000;
  }
  const v = value.trim();
  if (/^-?\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const re = /(-?\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let total = 0;
  let consumed = "";
  for (const m of v.matchAll(re)) {
    const n = Number(m[1]);
    total += m[2] === "h" ? n * 3_600_000 : m[2] === "m" ? n * 60_000 : m[2] === "s" ? n * 1000 : n;
    consumed += m[0];
  }
  if (consumed.length === 0 || consumed !== v) throw new Error(`"${value}" is not a duration (try 5m, 30s, 0 or -1)`);
  return total;
}

const CONVERT_TYPES = ["auto", "f32", "f16", "bf16", "q8_0", "q4_0"] as const;

function envConvertType(env: NodeJS.ProcessEnv): Config["convertType"] | undefined {
  const v = env.SHIMMY_CONVERT_TYPE;
  if (v === undefined || v === "") return undefined;
  if (!(CONVERT_TYPES as readonly string[]).includes(v)) throw new Error(`SHIMMY_CONVERT_TYPE=${v} is not one of ${CONVERT_TYPES.join(", ")}`);
  return v as Config["convertType"];
}

function envSpeculative(env: NodeJS.ProcessEnv): SpeculativeMode | undefined {
  const v = env.SHIMMY_SPECULATIVE;
  if (v === undefined || v === "") return undefined;
  if (!(SPECULATIVE_MODES as readonly string[]).includes(v)) throw new Error(`SHIMMY_SPECULATIVE=${v} is not one of ${SPECULATIVE_MODES.join(", ")}`);
  return v as SpeculativeMode;
}

/** The speculative mode and draft model: a draft model (or pairing) alone means `draft`; `draft` needs one. */
function speculativeSettings(overrides: ConfigOverrides, env: NodeJS.ProcessEnv): { speculative: SpeculativeMode; draftModel?: string; draftAuto: boolean } {
  const draftModel = overrides.draftModel ?? (env.SHIMMY_DRAFT_MODEL || undefined);
  const draftAuto = overrides.draftAuto ?? env.SHIMMY_DRAFT_AUTO === "1";
  const drafter = draftModel !== undefined || draftAuto;
  const speculative = overrides.speculative ?? envSpeculative(env) ?? (drafter ? "draft" : "off");
  if (speculative === "draft" && !drafter) throw new Error("--speculative draft needs a draft model (--draft-model NAME or --draft-auto)");
  return { speculative, draftAuto, ...(draftModel === undefined ? {} : { draftModel }) };
}

/** Draft bounds from flags or environment: 1 ≤ min ≤ max. */
function draftBounds(overrides: ConfigOverrides, env: NodeJS.ProcessEnv): { draftMax: number; draftMin: number } {
  const draftMax = overrides.draftMax ?? envInt(env, "SHIMMY_DRAFT_MAX") ?? 8;
  const draftMin = overrides.draftMin ?? envInt(env, "SHIMMY_DRAFT_MIN") ?? 1;
  if (draftMax < 1 || draftMin < 1) throw new Error("draft lengths (--draft-max, --draft-min) are at least 1");
  if (draftMin > draftMax) throw new Error(`--draft-min ${draftMin} is more than --draft-max ${draftMax}`);
  return { draftMax, draftMin };
}

function envInt(env: NodeJS.ProcessEnv, key: string): number | undefined {
  const v = env[key];
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${key}=${v} is not a non-negative integer`);
  return n;
}

const SIZE_UNITS: Record<string, number> = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** A byte count: a plain number of bytes, or with a binary unit: 512M, 8G, 1.5g, 100KiB. */
export function parseByteSize(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(value);
  const bytes = m ? Math.floor(Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!) : Number.NaN;
  if (!Number.isSafeInteger(bytes)) throw new Error(`"${value}" is not a size (bytes, or a number with K, M, G or T)`);
  return bytes;
}

function envByteSize(env: NodeJS.ProcessEnv, key: string): number | undefined {
  const v = env[key];
  if (v === undefined || v === "") return undefined;
  try {
    return parseByteSize(v);
  } catch (e) {
    throw new Error(`${key}=${v}: ${(e as Error).message}`);
  }
}

/** "a, b,,c" → ["a", "b", "c"]. */
export function splitList(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
}

/** A key file: one key per line; blank lines and lines starting with # are skipped. */
function readApiKeyFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new Error(`cannot read the API key file ${path}: ${(e as Error).message}`);
  }
  const keys = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith("#"));
  // An empty file must not quietly leave the server open.
  if (keys.length === 0) throw new Error(`the API key file ${path} holds no keys`);
  return keys;
}

/** Flags replace the environment; within each, inline keys and a key file add up. */
function apiKeysFrom(overrides: ConfigOverrides, env: NodeJS.ProcessEnv): string[] {
  const fromFlags = overrides.apiKeys !== undefined || overrides.apiKeyFile !== undefined;
  const inline = fromFlags ? overrides.apiKeys ?? [] : splitList(env.SHIMMY_API_KEY);
  const file = fromFlags ? overrides.apiKeyFile : env.SHIMMY_API_KEY_FILE || undefined;
  const keys = [...inline, ...(file === undefined ? [] : readApiKeyFile(file))];
  if (keys.some((k) => k.trim() !== k || k.length === 0)) throw new Error("an API key is empty or has surrounding spaces");
  return [...new Set(keys)];
}

/** What loadConfig may ask the machine (the CLI passes engine/native-build.ts; tests a fake). */
export interface MachineProbe {
  /** Whether a GPU the prebuilt binaries could use may be present. */
  gpuMayBeAvailable(): boolean;
  /** Whether `shimmy build-native` has left a finished build. */
  nativeBuildExists(): boolean;
}

/**
 * Once `shimmy build-native` has made a build, Shimmy uses it — unless --native/--no-native or
 * SHIMMY_NATIVE chose, or a GPU may be there (the native build is CPU-only: it would take GPU
 * offloading away). Without a probe, the prebuilt binary.
 */
function nativeBuildDefault(gpu: Config["gpu"], machine: MachineProbe | undefined): boolean {
  if (!machine) return false;
  if (gpu !== false && machine.gpuMayBeAvailable()) return false;
  return machine.nativeBuildExists();
}

export function loadConfig(overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env, cores = 2, machine?: MachineProbe): Config {
  const home = env.HOME ?? homedir();
  const gpuEnv = env.SHIMMY_GPU?.toLowerCase();
  const gpu = overrides.gpu ?? (gpuEnv && ["false", "off", "none", "0", "cpu"].includes(gpuEnv) ? false : "auto");
  const nativeBuild = overrides.nativeBuild ?? (env.SHIMMY_NATIVE !== undefined ? env.SHIMMY_NATIVE === "1" : nativeBuildDefault(gpu, machine));
  const defaults = defaultThreads(cores, nativeBuild);
  // Unset = auto: the chooser cannot change results (engine/decode-loop.ts THREAD_INVARIANT_CELLS).
  const threadsSetting = overrides.threads ?? (env.SHIMMY_THREADS === "auto" ? "auto" : envInt(env, "SHIMMY_THREADS")) ?? "auto";
  const chosenThreads = threadsSetting === "auto" ? undefined : threadsSetting;
  const threads = chosenThreads ?? defaults.threads;
  // All cores or half of them, whichever the default is not.
  const otherDefault = defaults.threads === defaults.batchThreads ? Math.max(1, Math.floor(defaults.batchThreads / 2)) : defaults.batchThreads;
  const readTimeoutMs = overrides.readTimeoutMs ?? (envInt(env, "SHIMMY_READ_TIMEOUT") ?? 120) * 1000;
  const headersTimeoutMs = overrides.headersTimeoutMs ?? (envInt(env, "SHIMMY_HEADERS_TIMEOUT") ?? 30) * 1000;
  const cacheDir = env.SHIMMY_CACHE_DIR ? resolve(env.SHIMMY_CACHE_DIR) : join(home, ".cache", "shimmy");
  const promptCacheDir = overrides.promptCacheDir ?? (env.SHIMMY_PROMPT_CACHE_DIR || undefined);
  return {
    modelDirs: [...(overrides.modelDirs ?? []), ...splitPathList(env.SHIMMY_MODEL_PATHS)].map((p) => resolve(p)),
    modelPaths: (overrides.modelPaths ?? []).map((p) => resolve(p)),
    baseGguf: env.SHIMMY_BASE_GGUF ? resolve(env.SHIMMY_BASE_GGUF) : undefined,
    loraGguf: env.SHIMMY_LORA_GGUF ? resolve(env.SHIMMY_LORA_GGUF) : undefined,
    scanDefaultLocations: overrides.scanDefaultLocations ?? env.SHIMMY_NO_DEFAULT_LOCATIONS !== "1",
    maxScanDepth: envInt(env, "SHIMMY_SCAN_DEPTH") ?? 6,
    demo: overrides.demo ?? env.SHIMMY_DEMO !== "0",
    watchModels: overrides.watchModels ?? env.SHIMMY_WATCH !== "0",
    rescanIntervalMs: overrides.rescanIntervalMs ?? (envInt(env, "SHIMMY_RESCAN_INTERVAL") ?? 30) * 1000,
    home,
    env,
    host: overrides.host ?? "127.0.0.1",
    port: overrides.port ?? DEFAULT_PORT,
    bindAuto: overrides.bindAuto ?? false,
    ctxSize: overrides.ctxSize ?? envInt(env, "SHIMMY_CTX_SIZE"),
    ctxCap: 4096,
    threads,
    threadsAlternative: threadsSetting === "auto" && otherDefault !== threads ? otherDefault : undefined,
    // As llama-server's -tb: batches use a chosen --threads unless a count was chosen for them.
    batchThreads: overrides.batchThreads ?? envInt(env, "SHIMMY_THREADS_BATCH") ?? chosenThreads ?? defaults.batchThreads,
    batchSize: overrides.batchSize ?? envInt(env, "SHIMMY_BATCH_SIZE"),
    parallel: overrides.parallel ?? envInt(env, "SHIMMY_PARALLEL") ?? 4,
    gpu,
    bodyLimit: overrides.bodyLimit ?? envInt(env, "SHIMMY_MAX_BODY_BYTES") ?? 4 * 1024 * 1024,
    maxMessages: overrides.maxMessages ?? envInt(env, "SHIMMY_MAX_MESSAGES") ?? 10_000,
    drainTimeoutMs: overrides.drainTimeoutMs ?? (envInt(env, "SHIMMY_DRAIN_TIMEOUT") ?? 10) * 1000,
    cacheDir,
    convertType: overrides.convertType ?? envConvertType(env) ?? "auto",
    maxQueue: overrides.maxQueue ?? envInt(env, "SHIMMY_MAX_QUEUE") ?? 256,
    requestTimeoutMs: overrides.requestTimeoutMs ?? (envInt(env, "SHIMMY_REQUEST_TIMEOUT") ?? 600) * 1000,
    maxLoadedModels: overrides.maxLoadedModels ?? envInt(env, "SHIMMY_MAX_LOADED_MODELS") ?? 3,
    memoryBudgetBytes: overrides.memoryBudgetBytes ?? (envInt(env, "SHIMMY_MEMORY_BUDGET_MB") ?? Math.floor((totalmem() * 0.75) / 2 ** 20)) * 2 ** 20,
    keepAliveMs: overrides.keepAliveMs ?? (env.SHIMMY_KEEP_ALIVE ? parseDuration(env.SHIMMY_KEEP_ALIVE) : 5 * 60_000),
    nativeBuild,
    flashAttention: overrides.flashAttention ?? env.SHIMMY_FLASH_ATTENTION !== "0",
    apiKeys: apiKeysFrom(overrides, env),
    healthRequiresKey: overrides.healthRequiresKey ?? env.SHIMMY_HEALTH_REQUIRES_KEY === "1",
    corsOrigins: overrides.corsOrigins ?? splitList(env.SHIMMY_ORIGINS),
    allowedHosts: overrides.allowedHosts ?? splitList(env.SHIMMY_ALLOWED_HOSTS),
    // Node requires headersTimeout <= requestTimeout unless the latter is off (0).
    headersTimeoutMs: readTimeoutMs > 0 ? Math.min(headersTimeoutMs, readTimeoutMs) : headersTimeoutMs,
    readTimeoutMs,
    isolation: overrides.isolation ?? env.SHIMMY_ISOLATION !== "0",
    probeTimeoutMs: overrides.probeTimeoutMs ?? (envInt(env, "SHIMMY_PROBE_TIMEOUT") ?? 300) * 1000,
    promptCache: overrides.promptCache ?? env.SHIMMY_PROMPT_CACHE !== "0",
    promptCacheDir: promptCacheDir === undefined ? join(cacheDir, "prompt-cache") : resolve(promptCacheDir),
    // llama-server's --cache-ram default: room for several long prefixes of a 7-8B model.
    promptCacheMaxBytes: overrides.promptCacheMaxBytes ?? envByteSize(env, "SHIMMY_PROMPT_CACHE_SIZE") ?? 8 * 2 ** 30,
    // Below this, evaluating the prefix again costs about what reading its state back does.
    promptCacheMinTokens: overrides.promptCacheMinTokens ?? envInt(env, "SHIMMY_PROMPT_CACHE_MIN_TOKENS") ?? 1024,
    ...speculativeSettings(overrides, env),
    ...draftBounds(overrides, env),
  };
}
