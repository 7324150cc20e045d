import { existsSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../../package-root.js";
import type { Candidate } from "../types.js";

/** The name the built-in demo model is served under. */
export const DEMO_MODEL_NAME = "shimmy-demo";

const DEMO_FILE = join("assets", "demo", "stories260K-chat.gguf");

/** The demo GGUF shipped in the package (assets/demo), if this install has it. */
export function demoModelPath(): string | undefined {
  const root = packageRoot();
  const path = root === undefined ? undefined : join(root, DEMO_FILE);
  return path !== undefined && existsSync(path) ? path : undefined;
}

export function demoCandidate(path: string): Candidate {
  return { source: "demo", sourcePrefix: "demo", kind: "gguf", path, nameHint: DEMO_MODEL_NAME };
}
