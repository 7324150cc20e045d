import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Config } from "../config/config.js";
import { assemble } from "./assemble.js";
import { type InspectedCandidate, InspectionMemo, inspectCandidate } from "./inspect-candidate.js";
import { folderName, ggufStemName } from "./naming.js";
import { demoCandidate, demoModelPath } from "./sources/demo.js";
import { hfCacheRoot, scanHfCache } from "./sources/hf-cache.js";
import { ollamaRoots, scanOllama } from "./sources/ollama.js";
import { scanDirectory } from "./sources/scan-dir.js";
import type { Candidate, ModelSpec, SearchLocation, SourceName } from "./types.js";

export interface DiscoveryResult {
  models: ModelSpec[];
  locations: SearchLocation[];
  /** Debug notes: what was skipped and why. */
  notes: string[];
  elapsedMs: number;
}

export type DiscoveryConfig = Pick<
  Config,
  "modelDirs" | "modelPaths" | "baseGguf" | "loraGguf" | "scanDefaultLocations" | "maxScanDepth" | "home" | "env" | "demo"
>;

/** Whether a model can answer some request, as far as its files tell (the engine knows more). */
const looksServable = (m: ModelSpec): boolean => !m.error && m.capabilities.length > 0;

function explicitCandidate(path: string, source: SourceName, loraPath?: string): Candidate {
  const isDir = existsSync(path) && statSync(path).isDirectory();
  return {
    source,
    sourcePrefix: source,
    kind: isDir ? "hf-folder" : "gguf",
    path,
    nameHint: isDir ? folderName(path) : ggufStemName(path),
    loraPath,
  };
}

/**
 * Finds every model the configuration points at, in priority order: explicit paths, the
 * SHIMMY_BASE_GGUF pair, model dirs (flags, SHIMMY_MODEL_PATHS, ./models), Ollama, the HF cache,
 * LM Studio; then, when none of them can be served, the built-in demo model. Never throws because
 * of one bad file: such a model is listed with its error. A memo (a server's rescans) re-reads
 * only the files that changed since its last scan.
 */
export function discoverModels(config: DiscoveryConfig, cwd = process.cwd(), memo?: InspectionMemo): DiscoveryResult {
  const started = performance.now();
  const notes: string[] = [];
  const note = (m: string): void => void notes.push(m);
  const locations: SearchLocation[] = [];
  const candidates: Candidate[] = [];

  for (const p of config.modelPaths) {
    locations.push({ source: "path", path: p, exists: existsSync(p) });
    if (existsSync(p)) candidates.push(explicitCandidate(p, "path"));
    else note(`model path ${p} does not exist`);
  }
  if (config.baseGguf) {
    locations.push({ source: "env", path: config.baseGguf, exists: existsSync(config.baseGguf) });
    if (existsSync(config.baseGguf)) candidates.push(explicitCandidate(config.baseGguf, "env", config.loraGguf));
    else note(`SHIMMY_BASE_GGUF ${config.baseGguf} does not exist`);
  }

  const scan = (root: string, source: SourceName, prefix: string): void => {
    const exists = existsSync(root);
    locations.push({ source, path: root, exists });
    if (!exists) return;
    const found = scanDirectory(root, { source, sourcePrefix: prefix, maxDepth: config.maxScanDepth, note });
    // Real files before symlinks to them, then by path: names stay stable across runs.
    candidates.push(...found.sort((a, b) => Number(a.viaSymlink ?? false) - Number(b.viaSymlink ?? false) || a.path.localeCompare(b.path)));
  };

  const dirs = [...config.modelDirs];
  if (config.scanDefaultLocations) dirs.push(resolve(cwd, "models"));
  for (const dir of new Set(dirs)) scan(dir, "dir", "dir");

  if (config.scanDefaultLocations) {
    for (const root of ollamaRoots(config.env, config.home)) {
      const { candidates: found, location } = scanOllama(root, note);
      locations.push(location);
      candidates.push(...found.sort((a, b) => a.nameHint.localeCompare(b.nameHint)));
    }
    const { candidates: found, location } = scanHfCache(hfCacheRoot(config.env, config.home), config.maxScanDepth, note);
    locations.push(location);
    candidates.push(...found.sort((a, b) => a.nameHint.localeCompare(b.nameHint)));
    scan(join(config.home, ".lmstudio", "models"), "lmstudio", "lmstudio");
    scan(join(config.home, ".cache", "lm-studio", "models"), "lmstudio", "lmstudio");
  }

  const inspect = (c: Candidate): InspectedCandidate => (memo ? memo.inspect(c) : inspectCandidate(c));
  const items = candidates.map(inspect);
  let models = assemble(items);
  // The demo stands in for "no model yet"; --no-default-locations means only what was named.
  if (config.demo && config.scanDefaultLocations && !models.some(looksServable)) {
    const demo = demoModelPath();
    locations.push({ source: "demo", path: demo ?? "(built-in demo model missing from this install)", exists: demo !== undefined });
    if (demo) {
      models = assemble([...items, inspect(demoCandidate(demo))]);
      note("no servable model found: serving the built-in demo model");
    }
  }
  memo?.prune();
  return { models, locations, notes, elapsedMs: performance.now() - started };
}
