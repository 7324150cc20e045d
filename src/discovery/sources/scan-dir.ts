import { type Dirent, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { isHfModelFolder } from "../../formats/hf-folder.js";
import { SPLIT_RE, folderName, ggufStemName } from "../naming.js";
import type { Candidate, NoteSink, SourceName } from "../types.js";

const SKIP_DIRS = new Set(["node_modules", ".git", "__pycache__", ".cache"]);

export interface ScanOptions {
  source: SourceName;
  sourcePrefix: string;
  maxDepth: number;
  note: NoteSink;
}

/**
 * Walks a directory tree (bounded depth, symlinks followed once) and returns GGUF files and HF
 * model folders. Only the first part of a split GGUF becomes a candidate.
 */
export function scanDirectory(root: string, options: ScanOptions): Candidate[] {
  const found: Candidate[] = [];
  const seenDirs = new Set<string>();
  const walk = (dir: string, depth: number): void => {
    let ino: string;
    try {
      const st = statSync(dir);
      ino = `${st.dev}:${st.ino}`;
    } catch (e) {
      options.note(`skipped ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      return;
    }
    if (seenDirs.has(ino)) return;
    seenDirs.add(ino);
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (e) {
      options.note(`skipped ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      return;
    }
    const names = entries.map((e) => e.name);
    if (isHfModelFolder(dir, names)) {
      found.push({ source: options.source, sourcePrefix: options.sourcePrefix, kind: "hf-folder", path: dir, nameHint: folderName(dir) });
    }
    for (const entry of entries) {
      const full = join(dir, entry.name);
      let isDir = entry.isDirectory();
      let isFile = entry.isFile();
      if (entry.isSymbolicLink()) {
        try {
          const st = statSync(full);
          isDir = st.isDirectory();
          isFile = st.isFile();
        } catch {
          options.note(`skipped dangling link ${full}`);
          continue;
        }
      }
      if (isFile && entry.name.toLowerCase().endsWith(".gguf")) {
        const split = SPLIT_RE.exec(entry.name);
        if (split && Number(split[2]) !== 1) continue;
        found.push({
          source: options.source,
          sourcePrefix: options.sourcePrefix,
          kind: "gguf",
          path: full,
          nameHint: ggufStemName(full),
          viaSymlink: entry.isSymbolicLink(),
        });
      } else if (isDir && depth < options.maxDepth && !entry.name.startsWith(".") && !SKIP_DIRS.has(entry.name)) {
        walk(full, depth + 1);
      }
    }
  };
  walk(root, 0);
  return found;
}
