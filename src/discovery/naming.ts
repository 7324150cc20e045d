import { basename, dirname } from "node:path";

/** `-00001-of-00003.gguf` style split parts. */
export const SPLIT_RE = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/i;

/** The model name for a GGUF file: its stem, lower-cased, split suffix removed. */
export function ggufStemName(path: string): string {
  const file = basename(path);
  const split = SPLIT_RE.exec(file);
  const stem = split ? split[1]! : file.replace(/\.gguf$/i, "");
  return stem.toLowerCase();
}

// Folder names that say nothing about the model; the parent folder names it instead.
const GENERIC_FOLDER_NAMES = new Set(["hf", "model", "models", "weights", "safetensors", "checkpoint", "original", "main"]);

/** The model name for an HF folder: its name lower-cased, or `parent/name` when the name is generic. */
export function folderName(path: string): string {
  const name = basename(path).toLowerCase();
  if (!GENERIC_FOLDER_NAMES.has(name)) return name;
  return `${basename(dirname(path)).toLowerCase()}/${name}`;
}
