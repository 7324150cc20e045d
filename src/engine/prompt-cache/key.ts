import { createHash } from "node:crypto";
import { stat } from "node:fs/promises";

/** A file as it was: a saved state belongs to these exact bytes. */
export interface FileStamp {
  path: string;
  size: number;
  mtimeMs: number;
}

export async function fileStamp(path: string): Promise<FileStamp> {
  const st = await stat(path);
  return { path, size: st.size, mtimeMs: st.mtimeMs };
}

/** Whether every file is still there with the same size and mtime. */
export async function stampsCurrent(files: readonly FileStamp[]): Promise<boolean> {
  for (const f of files) {
    try {
      const now = await fileStamp(f.path);
      if (now.size !== f.size || now.mtimeMs !== f.mtimeMs) return false;
    } catch {
      return false;
    }
  }
  return true;
}

/** What decides the layout and meaning of a sequence's KV state, besides the model's files. */
export interface KvLayout {
  /** Tokens per sequence. */
  contextSize: number;
  /** Sequences of the context: llama.cpp's state file records its stream count (one per sequence). */
  sequences: number;
  flashAttention: boolean;
  /** K and V cache types (node-llama-cpp's default is F16 for both; Shimmy does not change it). */
  kvType: string;
}

/**
 * The key a saved state is kept under: the model's files (GGUF and LoRA adapter, by path, size
 * and mtime) and the context settings that change the KV cache. A state is never restored into a
 * context whose key differs.
 */
export function promptCacheKey(files: readonly FileStamp[], layout: KvLayout): string {
  const identity = { files: files.map((f) => [f.path, f.size, f.mtimeMs]), ...layout };
  return createHash("sha256").update(JSON.stringify(identity)).digest("hex");
}
