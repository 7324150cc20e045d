import { type Dirent, readdirSync, realpathSync, statSync } from "node:fs";
import { join, sep } from "node:path";
import { isHfModelFolder } from "../../formats/hf-folder.js";
import { SPLIT_RE, folderName, ggufStemName } from "../naming.js";
import type { Candidate, NoteSink, SourceName } from "../types.js";

const SKIP_DIRS = new Set(["node_modules", ".git", "__pycache__", ".cache"]);

/** Kernel file systems: endless or blocking "files", never models; not entered unless the scan starts inside one. */
const SYSTEM_DIRS = ["/proc", "/sys", "/dev"];

function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep);
}

function realPathOf(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

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
  const realRoot = realPathOf(root) ?? root;
  /** A directory resolving into /proc, /sys or /dev, unless the scan was started inside that one. */
  const isSystemDir = (dir: string): boolean => {
    const real = realPathOf(dir) ?? dir;
    return SYSTEM_DIRS.some((d) => within(real, d) && !(within(realRoot, d) && within(real, realRoot)));
  };
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
        if (isSystemDir(full)) options.note(`skipped ${full}: a system directory (/proc, /sys, /dev)`);
        else walk(full, depth + 1);
      }
    }
  };
  walk(root, 0);
  return found;
}
