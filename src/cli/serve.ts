import { type Command, InvalidArgumentError } from "commander";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { gpuMayBeAvailable, nativeBuildExists } from "../engine/native-build.js";
import { startServer } from "../server/server.js";
import { type Config, DEFAULT_PORT, parseByteSize, parseDuration, splitList } from "../config/config.js";
import { isLoopbackHost } from "../server/access.js";
import { DEMO_MODEL_NAME } from "../discovery/sources/demo.js";
import { configFrom, type ModelSourceFlags, parseNonNegativeInt, parsePositiveInt, withEngineOptions, withModelSources } from "./common.js";
import { bold, describeThreads, dim, green } from "./output.js";

const { version } = createRequire(import.meta.url)("../../package.json") as { version: string };

interface ServeFlags extends ModelSourceFlags {
  bind?: string;
  port?: number;
  parallel?: number;
  batchSize?: number;
  maxQueue?: number;
  requestTimeout?: number;
  maxLoadedModels?: number;
  memoryBudget?: number;
  keepAlive?: string;
  json?: boolean;
  log?: string;
  apiKey?: string[];
  apiKeyFile?: string;
  healthRequiresKey?: boolean;
  corsOrigins?: string[];
  allowedHosts?: string[];
  readTimeout?: number;
  headersTimeout?: number;
  maxBodyBytes?: number;
  maxMessages?: number;
  drainTimeout?: number;
  watch?: boolean;
  rescanInterval?: number;
  promptCache?: boolean;
  promptCacheDir?: string;
  promptCacheSize?: number;
  promptCacheMinTokens?: number;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

function parseSize(value: string): number {
  try {
    return parseByteSize(value);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

function parseKeepAlive(value: string): string {
  try {
    parseDuration(value);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
  return value;
}

/** "HOST:PORT", "[::1]:PORT", "HOST" or "auto". */
function parseBind(value: string): { host?: string; port?: number; auto: boolean } {
  if (value === "auto") return { auto: true };
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d+|auto))?$/.exec(value);
  if (!m) throw new InvalidArgumentError(`"${value}" is not HOST:PORT or auto`);
  const host = m[1] ?? m[2];
  if (m[3] === "auto") return { host, auto: true };
  const port = m[3] === undefined ? undefined : Number(m[3]);
  if (port !== undefined && port > 65535) throw new InvalidArgumentError(`port ${port} is out of range`);
  return { host, port, auto: false };
}

/** One line for the ways binding the port fails, or undefined for any other error. */
function listenFailure(e: NodeJS.ErrnoException, host: string, port: number): string | undefined {
  const at = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  switch (e.code) {
    case "EADDRINUSE":
      return `cannot listen on ${at}: the port is already in use (choose another with --port N, or --bind auto for the first free one from ${DEFAULT_PORT})`;
    case "EACCES":
      return `cannot listen on ${at}: permission denied (ports below 1024 need privileges; try --port N or --bind auto)`;
    case "EADDRNOTAVAIL":
      return `cannot listen on ${at}: ${host} is not an address of this machine (see --bind)`;
    default:
      return undefined;
  }
}

/** A model worth pulling first: small, real, and instruction-tuned. */
export const SUGGESTED_PULL = "hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF";

/** What to say when no model of the user's own was found: how to get one, and what is served meanwhile. */
function firstModelHint(config: Config, demoServed: boolean): string[] {
  const dir = config.modelDirs[0] ?? (config.scanDefaultLocations ? resolve("models") : undefined);
  return [
    "no models of your own found (`shimmy discover` shows where Shimmy looked). To get one:",
    `  shimmy pull ${SUGGESTED_PULL}    (a 0.5B chat model, ~400 MB)`,
    dir ? `  or copy any .gguf file into ${dir} — it is picked up while serving, no restart` : "  or name a folder of .gguf files with --model-dirs DIR",
    demoServed
      ? dim(`  meanwhile the built-in demo model ${DEMO_MODEL_NAME} answers (a 260K-parameter story toy; --no-demo hides it)`)
      : dim("  the built-in demo model is off (--no-demo, SHIMMY_DEMO=0, or --no-default-locations)"),
  ];
}

export function registerServe(program: Command): void {
  withEngineOptions(withModelSources(program.command("serve").description("serve every discovered model over an OpenAI-compatible HTTP API")))
    .option("--bind <addr>", "HOST:PORT to listen on, or auto (11435…11535, then any free port)", "127.0.0.1:11435")
    .option("--port <n>", "port (overrides the one in --bind; 0 = any free port)", parseNonNegativeInt)
    .option("--parallel <n>", "concurrent requests per model (sequences of its context)", parsePositiveInt)
    .option("--batch-size <n>", "prompt batch size", parsePositiveInt)
    .option("--max-queue <n>", "requests that may wait for a slot per model before 503 (default 256; SHIMMY_MAX_QUEUE)", parseNonNegativeInt)
    .option("--request-timeout <seconds>", "per-request time limit, queueing included (default 600; SHIMMY_REQUEST_TIMEOUT)", parsePositiveInt)
    .option("--max-loaded-models <n>", "models kept loaded at once (default 3; SHIMMY_MAX_LOADED_MODELS)", parsePositiveInt)
    .option("--memory-budget <MiB>", "memory for loaded models (default 75% of RAM; SHIMMY_MEMORY_BUDGET_MB)", parsePositiveInt)
    .option("--keep-alive <duration>", "idle time before unloading: 5m, 30s, 0 = right away, -1 = never (default 5m; SHIMMY_KEEP_ALIVE)", parseKeepAlive)
    .option("--api-key <key>", "require this key (Authorization: Bearer KEY or x-api-key: KEY); repeatable (SHIMMY_API_KEY, comma-separated)", collect)
    .option("--api-key-file <path>", "require one of the keys in this file, one per line (SHIMMY_API_KEY_FILE)")
    .option("--health-requires-key", "make /health need the key too (SHIMMY_HEALTH_REQUIRES_KEY=1)")
    .option("--cors-origins <origins>", "browser origins allowed besides local pages and apps, comma-separated, * globs; * = any (SHIMMY_ORIGINS)", splitList)
    .option("--allowed-hosts <hosts>", "Host header names allowed besides loopback, the bound address and this machine's name, comma-separated, * globs; * = any (SHIMMY_ALLOWED_HOSTS)", splitList)
    .option("--read-timeout <seconds>", "time a client has to send a whole request, 0 = none (default 120; SHIMMY_READ_TIMEOUT)", parseNonNegativeInt)
    .option("--headers-timeout <seconds>", "time a client has to send a request's headers, 0 = none (default 30; SHIMMY_HEADERS_TIMEOUT)", parseNonNegativeInt)
    .option("--max-body-bytes <n>", "largest request body accepted, in bytes; larger gets 413 (default 4194304 = 4 MiB; SHIMMY_MAX_BODY_BYTES)", parsePositiveInt)
    .option("--max-messages <n>", "most chat messages one request may carry; more gets 400 (default 10000; SHIMMY_MAX_MESSAGES)", parsePositiveInt)
    .option("--drain-timeout <seconds>", "on SIGTERM/SIGINT, time in-flight requests get to finish before they are cut (default 10; SHIMMY_DRAIN_TIMEOUT)", parseNonNegativeInt)
    .option("--no-watch", "do not watch the model folders for new, changed or removed files (SHIMMY_WATCH=0)")
    .option("--rescan-interval <seconds>", "rescan every model location this often even without file events, 0 = never (default 30; SHIMMY_RESCAN_INTERVAL)", parseNonNegativeInt)
    .option("--no-prompt-cache", "keep no prompt prefixes' KV state on disk (SHIMMY_PROMPT_CACHE=0)")
    .option("--prompt-cache-dir <dir>", "where long prompt prefixes' KV states are saved (default: prompt-cache in the cache dir; SHIMMY_PROMPT_CACHE_DIR)")
    .option("--prompt-cache-size <bytes>", "bytes of saved states kept, least recently used evicted first: a number, or with K, M, G (default 8G; SHIMMY_PROMPT_CACHE_SIZE)", parseSize)
    .option("--prompt-cache-min-tokens <n>", "shortest prompt prefix saved or restored, in tokens (default 1024; SHIMMY_PROMPT_CACHE_MIN_TOKENS)", parsePositiveInt)
    .option("--log <level>", "log level: fatal, error, warn, info, debug", "warn")
    .option("--json", "print the startup line as JSON")
    .action(async (flags: ServeFlags) => {
      const bind = parseBind(flags.bind ?? "127.0.0.1:11435");
      let config: Config;
      try {
        config = configFrom(flags, {
          host: bind.host ?? "127.0.0.1",
          port: flags.port ?? bind.port ?? 11435,
          bindAuto: bind.auto && flags.port === undefined,
          parallel: flags.parallel,
          batchSize: flags.batchSize,
          maxQueue: flags.maxQueue,
          requestTimeoutMs: flags.requestTimeout === undefined ? undefined : flags.requestTimeout * 1000,
          maxLoadedModels: flags.maxLoadedModels,
          memoryBudgetBytes: flags.memoryBudget === undefined ? undefined : flags.memoryBudget * 2 ** 20,
          keepAliveMs: flags.keepAlive === undefined ? undefined : parseDuration(flags.keepAlive),
          apiKeys: flags.apiKey,
          apiKeyFile: flags.apiKeyFile,
          healthRequiresKey: flags.healthRequiresKey,
          corsOrigins: flags.corsOrigins,
          allowedHosts: flags.allowedHosts,
          readTimeoutMs: flags.readTimeout === undefined ? undefined : flags.readTimeout * 1000,
          headersTimeoutMs: flags.headersTimeout === undefined ? undefined : flags.headersTimeout * 1000,
          bodyLimit: flags.maxBodyBytes,
          maxMessages: flags.maxMessages,
          drainTimeoutMs: flags.drainTimeout === undefined ? undefined : flags.drainTimeout * 1000,
          watchModels: flags.watch === false ? false : undefined,
          rescanIntervalMs: flags.rescanInterval === undefined ? undefined : flags.rescanInterval * 1000,
          promptCache: flags.promptCache === false ? false : undefined,
          promptCacheDir: flags.promptCacheDir,
          promptCacheMaxBytes: flags.promptCacheSize,
          promptCacheMinTokens: flags.promptCacheMinTokens,
        });
      } catch (e) {
        // A bad setting (an unreadable key file, say) is the user's to fix: its message, no stack.
        console.error(`shimmy serve: ${(e as Error).message}`);
        process.exitCode = 2;
        return;
      }
      if (config.apiKeys.length === 0 && !isLoopbackHost(config.host)) {
        console.warn(`warning: listening on ${config.host} without an API key: anyone who can reach this address can use the server (--api-key; docs/security.md)`);
      }
      let server: Awaited<ReturnType<typeof startServer>>;
      try {
        server = await startServer(config, version, { level: flags.log ?? "warn" });
      } catch (e) {
        const reason = listenFailure(e as NodeJS.ErrnoException, config.host, config.port);
        if (!reason) throw e;
        console.error(`shimmy: ${reason}`);
        process.exit(1);
      }
      const models = server.ctx.pool.servable();
      if (flags.json) {
        console.log(JSON.stringify({ event: "listening", url: server.url, port: server.port, version, models: models.map((m) => m.name) }));
      } else {
        console.log(`${bold("shimmy")} ${version} listening on ${green(server.url)}  ${dim(`(chat page at ${server.url}/, OpenAI API at ${server.url}/v1, Ollama API at ${server.url}/api)`)}`);
        console.log(dim(`  compute: ${config.nativeBuild ? "native build" : "prebuilt binary"}, ${describeThreads(config)}`));
        // CPU-only on the prebuilt binary: the native build is the faster choice (docs/configuration.md).
        if (!config.nativeBuild && !nativeBuildExists() && (config.gpu === false || !gpuMayBeAvailable())) console.log(dim("  tip: `shimmy build-native` (once, ~7 min on 2 cores) builds llama.cpp for this CPU; it is used from then on"));
        if (models.every((m) => m.source === "demo")) for (const line of firstModelHint(config, models.length > 0)) console.log(line);
        for (const m of models) console.log(`  ${m.name} ${dim(`${m.architecture ?? "?"} ${m.quantization ?? ""} ${m.source}`)}`);
      }
      let stopping = false;
      const stop = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        if (!flags.json) console.log(dim(`${signal}: finishing in-flight requests, then exiting`));
        server.close().then(
          () => process.exit(0),
          (e: unknown) => {
            console.error(`shutdown failed: ${(e as Error).message}`);
            process.exit(1);
          },
        );
      };
      process.on("SIGINT", () => stop("SIGINT"));
      process.on("SIGTERM", () => stop("SIGTERM"));
    });
}
