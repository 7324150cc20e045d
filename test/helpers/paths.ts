import { existsSync } from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The shared test models: $SHIMMY_TEST_MODELS, else ../shared/models beside the repo. */
export const MODELS_DIR = process.env.SHIMMY_TEST_MODELS ?? resolve(REPO_ROOT, "..", "shared", "models");
if (!existsSync(join(MODELS_DIR, "stories260K"))) {
  throw new Error(`test models not found at ${MODELS_DIR}; set SHIMMY_TEST_MODELS to the shared models folder`);
}

export const STORIES = join(MODELS_DIR, "stories260K");
export const STORIES_GGUF = join(STORIES, "stories260K.gguf");
export const STORIES_CHAT_GGUF = join(STORIES, "stories260K-chat.gguf");
export const STORIES_HF = join(STORIES, "hf");
export const QWEN_HF = join(MODELS_DIR, "tiny-qwen2", "hf");

export interface TempDir {
  path: string;
  cleanup(): void;
}

export function tempDir(prefix = "shimmy-test-"): TempDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}
