import type { Command } from "commander";
import { createServer } from "node:net";
import { DEFAULT_PORT, type Config } from "../config/config.js";
import type { ModelSpec } from "../discovery/types.js";
import { verdictCachePath } from "../engine/create-pool.js";
import { cachedVerdict } from "../engine/isolation/probe-gate.js";
import { getRuntime, runtimeOptionsFor } from "../engine/llama.js";
import { gpuMayBeAvailable, nativeBuildExists } from "../engine/native-build.js";
import { unservableReason } from "../engine/servability.js";
import { readGguf } from "../formats/gguf.js";
import { kvBytesPerToken } from "../formats/kv-cache.js";
import { Registry } from "../registry/registry.js";
import { configFrom, type ModelSourceFlags, parseNonNegativeInt, withEngineOptions, withModelSources } from "./common.js";
import { dim, formatBytes, green, red, toJson, yellow } from "./output.js";

type Level = "ok" | "info" | "warn" | "error";

interface Finding {
  level: Level;
  message: string;
  suggestion?: string;
}

interface ModelCheck {
  name: string;
  path: string;
  source: string;
  format: string;
  quantization: string | null;
  size_bytes: number;
  verdict: "ok" | "warn" | "unusable";
  findings: Finding[];
}

/** Q8_0 stores 32 weights in 34 bytes. */
const Q8_0_BYTES_PER_WEIGHT = 34 / 32;
const UNQUANTIZED = new Set(["F32", "F16", "BF16"]);
/** A model this large that is not quantized is worth quantizing; smaller ones get a note only. */
const LARGE_BYTES = 2 ** 30;

function precisionFinding(spec: ModelSpec): Finding | undefined {
  const quant = spec.quantization?.toUpperCase();
  if (!quant || !UNQUANTIZED.has(quant) || !spec.parameters || spec.source === "demo") return undefined;
  const times = spec.sizeBytes / (spec.parameters * Q8_0_BYTES_PER_WEIGHT);
  if (times < 1.2) return undefined;
  const level: Level = spec.sizeBytes >= LARGE_BYTES ? "warn" : "info";
  const message = `${quant} weights (${formatBytes(spec.sizeBytes)}): a Q8_0 copy would be ${times.toFixed(1)}× smaller, and faster to decode on a CPU (less memory read per token)`;
  const suggestion =
    spec.format === "safetensors"
      ? `\`shimmy convert ${spec.name} --type q8_0\` makes it ${times.toFixed(1)}× smaller (or serve with SHIMMY_CONVERT_TYPE=q8_0)`
      : `\`shimmy quantize ${spec.files[0]} OUT.gguf --type q8_0\` makes it ${times.toFixed(1)}× smaller`;
  return { level, message, suggestion };
}

/** The context a slot gets (as LoadedModel chooses it) and the KV cache all slots need, for a GGUF. */
function kvFinding(spec: ModelSpec, config: Config): Finding | undefined {
  if (spec.format !== "gguf" || spec.error) return undefined;
  let perToken: number | undefined;
  try {
    perToken = kvBytesPerToken(readGguf(spec.files[0]!, { maxArrayLength: 64 }));
  } catch {
    return undefined;
  }
  if (!perToken) return undefined;
  const ctx = config.ctxSize ?? Math.min(spec.contextLength ?? config.ctxCap, config.ctxCap);
  const kv = perToken * ctx * config.parallel;
  const budget = config.memoryBudgetBytes;
  const message = `context ${ctx} × ${config.parallel} slots needs ~${formatBytes(kv)} of KV cache (${formatBytes(perToken)} a token) besides ${formatBytes(spec.sizeBytes)} of weights`;
  if (spec.sizeBytes + kv <= budget) return { level: "info", message };
  // The largest power-of-two context whose cache fits the budget beside the weights.
  let fits = 0;
  for (let c = 256; c <= ctx && spec.sizeBytes + perToken * c * config.parallel <= budget; c *= 2) fits = c;
  const suggestion = fits > 0 ? `use \`--ctx-size ${fits}\` (or fewer \`--parallel\` slots) to fit the memory budget of ${formatBytes(budget)}` : `the weights alone exceed the memory budget of ${formatBytes(budget)} (\`--memory-budget\`)`;
  return { level: "warn", message: `${message}: more than the memory budget`, suggestion };
}

function checkModel(spec: ModelSpec, config: Config): ModelCheck {
  const findings: Finding[] = [];
  const file = spec.files[0] ?? "";
  if (spec.error) findings.push({ level: "error", message: `unusable: ${spec.error.startsWith(file) ? spec.error : `${file}: ${spec.error}`}` });
  const verdict = spec.format === "gguf" ? cachedVerdict(verdictCachePath(config), file) : undefined;
  if (verdict && !verdict.ok) findings.push({ level: "error", message: `unusable: ${verdict.file}: ${verdict.reason ?? "crashed a probe"} (crash isolation refused it)`, suggestion: "a new or fixed copy of the file is probed again" });
  const unservable = spec.error ? undefined : unservableReason(spec, "embed");
  if (unservable) findings.push({ level: "info", message: `not served: ${unservable}` });
  if (spec.source === "demo") findings.push({ level: "info", message: "the built-in demo model: a 260K-parameter story toy, listed only until a model of your own is found", suggestion: "`shimmy pull hf:…` or copy a .gguf into a models folder" });
  for (const f of [precisionFinding(spec), kvFinding(spec, config)]) if (f) findings.push(f);
  const worst = findings.some((f) => f.level === "error") ? "unusable" : findings.some((f) => f.level === "warn") ? "warn" : "ok";
  return { name: spec.name, path: file, source: spec.source, format: spec.format, quantization: spec.quantization ?? null, size_bytes: spec.sizeBytes, verdict: worst, findings };
}

/** Whether the port is free; if not, who answers on it (a Shimmy, an Ollama-like server, or something else). */
async function portFinding(host: string, port: number): Promise<Finding> {
  const error = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    const server = createServer();
    server.once("error", (e) => resolve(e));
    server.listen({ host, port }, () => server.close(() => resolve(undefined)));
  });
  if (!error) return { level: "ok", message: `port ${port} on ${host} is free for \`shimmy serve\`` };
  if (error.code !== "EADDRINUSE") return { level: "warn", message: `cannot listen on ${host}:${port}: ${error.code ?? error.message}`, suggestion: "choose another with `--port N` or `--bind auto`" };
  const at = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  const json = async (path: string): Promise<Record<string, unknown> | undefined> => {
    try {
      const res = await fetch(`${at}${path}`, { signal: AbortSignal.timeout(1500) });
      return res.ok ? ((await res.json()) as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  };
  const health = await json("/health");
  const version = await json("/api/version");
  const who = health?.status === "ok" && typeof health.version === "string" ? `Shimmy ${health.version} (already running?)` : version?.version ? `an Ollama-compatible server (version ${String(version.version)})` : "another program";
  return { level: "warn", message: `port ${port} on ${host} is in use by ${who}`, suggestion: "`shimmy serve --port N`, or `--bind auto` for the first free port" };
}

async function computeFindings(config: Config): Promise<Finding[]> {
  const findings: Finding[] = [];
  const gpuDevice = gpuMayBeAvailable();
  if (gpuDevice && config.gpu === false) findings.push({ level: "warn", message: "a GPU device is present but the GPU is turned off (--gpu off / SHIMMY_GPU)", suggestion: "`--gpu auto`" });
  else if (gpuDevice && config.nativeBuild) findings.push({ level: "warn", message: "a GPU device is present but the native build in use is CPU-only", suggestion: "`--no-native` (or SHIMMY_NATIVE=0) uses the prebuilt binaries, which offload to the GPU" });
  else if (gpuDevice) {
    try {
      const llama = await getRuntime(runtimeOptionsFor(config));
      if (llama.gpu) findings.push({ level: "ok", message: `GPU: ${llama.gpu} (${(await llama.getGpuDeviceNames()).join(", ") || "device"})` });
      else findings.push({ level: "warn", message: "a GPU device is present but the binary node-llama-cpp loaded is CPU-only (no usable CUDA/Vulkan/Metal build for it)", suggestion: "see `shimmy gpu-info`; install the GPU driver and toolkit, then reinstall" });
      await llama.dispose();
    } catch (e) {
      findings.push({ level: "warn", message: `the llama.cpp runtime did not load: ${(e as Error).message}` });
    }
  }
  if (config.nativeBuild) findings.push({ level: "ok", message: "compute: the native CPU build (`shimmy build-native`)" });
  else if (nativeBuildExists()) findings.push({ level: "info", message: "a native CPU build exists but is not used (--no-native, SHIMMY_NATIVE=0, or a GPU may be present)" });
  else if (!gpuDevice || config.gpu === false) {
    findings.push({ level: "info", message: "compute: the prebuilt CPU binary; no native build has been made or measured on this machine", suggestion: "`shimmy build-native` compiles llama.cpp for this CPU (once, ~7 min on 2 cores, no downloads); on the project's 2-core test machine it decoded a single stream at 203 tok/s against the prebuilt binary's 165 (docs/performance.md); it is used from then on" });
  }
  return findings;
}

interface DoctorFlags extends ModelSourceFlags {
  json?: boolean;
  host: string;
  port: number;
}

const MARK: Record<Level, (s: string) => string> = { ok: green, info: dim, warn: yellow, error: red };

export function registerDoctor(program: Command): void {
  withEngineOptions(withModelSources(program.command("doctor").description("check every discovered model and this machine: what is unusable, slow or in the way, and what to do")))
    .option("--host <host>", "the address `shimmy serve` would listen on", "127.0.0.1")
    .option("--port <n>", "the port `shimmy serve` would listen on", parseNonNegativeInt, DEFAULT_PORT)
    .option("--json", "machine-readable report")
    .action(async (flags: DoctorFlags) => {
      const config = configFrom(flags);
      const registry = new Registry(config);
      const models = registry.all().map((m) => checkModel(m, config));
      const system = [...(await computeFindings(config)), await portFinding(flags.host, flags.port)];
      if (flags.json) {
        console.log(toJson({ models, system, notes: registry.discovery.notes }));
        return;
      }
      if (models.length === 0) console.log("no models found (`shimmy discover` shows where Shimmy looked)");
      for (const m of models) {
        const verdict = m.verdict === "ok" ? green("ok") : m.verdict === "warn" ? yellow("warn") : red("unusable");
        console.log(`${m.name}  ${verdict}  ${dim(`${m.format} ${m.quantization ?? ""} ${formatBytes(m.size_bytes)} ${m.path}`)}`);
        for (const f of m.findings) console.log(`  ${MARK[f.level](f.level)} ${f.message}${f.suggestion ? `\n       → ${f.suggestion}` : ""}`);
      }
      console.log("this machine:");
      for (const f of system) console.log(`  ${MARK[f.level](f.level)} ${f.message}${f.suggestion ? `\n       → ${f.suggestion}` : ""}`);
    });
}
