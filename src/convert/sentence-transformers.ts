import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { FormatError } from "../formats/errors.js";
import { parseJsonText, readJsonObject } from "../formats/json.js";
import { ConvertError } from "./errors.js";

/** Pooling types llama.cpp implements, as `<arch>.pooling_type` stores them. */
export const LLAMA_POOLING = { mean: 1, cls: 2, last: 3 } as const;
export type LlamaPooling = keyof typeof LLAMA_POOLING;

/** sentence-transformers' pooling modes (1_Pooling/config.json keys) → llama.cpp's, or null where it has none. */
const MODES: Record<string, LlamaPooling | null> = {
  pooling_mode_mean_tokens: "mean",
  pooling_mode_cls_token: "cls",
  pooling_mode_lasttoken: "last",
  pooling_mode_max_tokens: null,
  pooling_mode_mean_sqrt_len_tokens: null,
  pooling_mode_weightedmean_tokens: null,
};
/** The newer single-key form (`"pooling_mode": "mean"`). */
const MODE_NAMES: Record<string, LlamaPooling | null> = { mean: "mean", cls: "cls", lasttoken: "last", max: null, mean_sqrt_len_tokens: null, weightedmean: null };

/** Modules whose effect the served vectors keep: the encoder itself, its pooling, and L2 normalisation (every normalising route applies it). */
const KEPT_MODULES = ["Transformer", "Pooling", "Normalize"];

function readJson(path: string): Record<string, unknown> {
  try {
    return readJsonObject(path);
  } catch (e) {
    if (e instanceof FormatError) throw new ConvertError(path, e.reason);
    throw e;
  }
}

function poolingFrom(path: string): LlamaPooling {
  const cfg = readJson(path);
  const asked: string[] = [];
  const chosen = new Set<LlamaPooling>();
  const refuse = (mode: string): never => {
    throw new ConvertError(path, `pooling mode "${mode}" cannot be converted: llama.cpp pools by mean, cls or last token only`);
  };
  if (typeof cfg.pooling_mode === "string") {
    const mode = MODE_NAMES[cfg.pooling_mode];
    if (mode === undefined || mode === null) refuse(cfg.pooling_mode);
    chosen.add(mode!);
    asked.push(cfg.pooling_mode);
  }
  for (const [key, mode] of Object.entries(MODES)) {
    if (cfg[key] !== true) continue;
    if (mode === null) refuse(key);
    chosen.add(mode!);
    asked.push(key);
  }
  if (chosen.size === 0) throw new ConvertError(path, "no pooling mode is set");
  // sentence-transformers concatenates the vectors of several modes; llama.cpp gives one.
  if (chosen.size > 1) throw new ConvertError(path, `several pooling modes are set (${asked.join(", ")}): llama.cpp pools one way only`);
  return [...chosen][0]!;
}

/**
 * How a sentence-transformers folder pools: modules.json's Pooling module (else a 1_Pooling
 * folder; else mean). A Normalize module needs nothing in the GGUF: /v1/embeddings and
 * /api/embed L2-normalise every vector. Modules llama.cpp cannot run (Dense, LayerNorm, …) are
 * refused by name: dropping one would serve different vectors.
 */
export function sentenceTransformersPooling(dir: string): LlamaPooling {
  const modulesPath = join(dir, "modules.json");
  let poolingDir: string | undefined = existsSync(join(dir, "1_Pooling", "config.json")) ? "1_Pooling" : undefined;
  if (existsSync(modulesPath)) {
    let modules: unknown;
    try {
      modules = parseJsonText(readFileSync(modulesPath, "utf8"), modulesPath, "modules.json");
    } catch (e) {
      throw new ConvertError(modulesPath, e instanceof FormatError ? e.reason : `cannot read modules.json: ${(e as Error).message}`);
    }
    if (!Array.isArray(modules)) throw new ConvertError(modulesPath, "modules.json is not a list of modules");
    poolingDir = undefined;
    for (const m of modules as { type?: unknown; path?: unknown }[]) {
      const type = typeof m?.type === "string" ? m.type : "";
      const kind = type.split(".").at(-1) ?? "";
      if (!KEPT_MODULES.includes(kind)) {
        throw new ConvertError(modulesPath, `module ${JSON.stringify(type)} (${String(m?.path)}) cannot be converted: llama.cpp runs the encoder and its pooling only, and without it the vectors would differ`);
      }
      if (kind === "Pooling") poolingDir = typeof m.path === "string" ? m.path : "";
    }
  }
  return poolingDir === undefined ? "mean" : poolingFrom(join(dir, poolingDir, "config.json"));
}
