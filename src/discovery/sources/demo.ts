import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Candidate } from "../types.js";

/** The name the built-in demo model is served under. */
export const DEMO_MODEL_NAME = "shimmy-demo";

const DEMO_FILE = join("assets", "demo", "stories260K-chat.gguf");

/**
 * The demo GGUF shipped in the package, found by walking up from this module: the same code runs
 * from src/ (tsx), dist/ (tsc output) and the bundled CLI in dist/cli/, at different depths.
 */
export function demoModelPath(from = dirname(fileURLToPath(import.meta.url))): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const path = join(dir, DEMO_FILE);
    if (existsSync(path)) return path;
    if (dirname(dir) === dir) return undefined;
  }
}

export function demoCandidate(path: string): Candidate {
  return { source: "demo", sourcePrefix: "demo", kind: "gguf", path, nameHint: DEMO_MODEL_NAME };
}
