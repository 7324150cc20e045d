import { existsSync, readdirSync, statSync } from "node:fs";
import { fileStatKey } from "../formats/file-stat-key.js";
import { basename, dirname, join } from "node:path";
import { type GgufFile, readGguf } from "../formats/gguf.js";
import { readHfFolder } from "../formats/hf-folder.js";
import { type ModelSummary, summarizeGguf, summarizeHfFolder } from "../formats/summary.js";
import { SPLIT_RE } from "./naming.js";
import type { Candidate } from "./types.js";

/** Discovery never needs vocabularies, so long arrays are stepped over. */
const DISCOVERY_MAX_ARRAY = 64;

export interface InspectedCandidate {
  candidate: Candidate;
  files: string[];
  sizeBytes: number;
  summary?: ModelSummary;
  error?: string;
  /** dev:ino of the primary file, to spot the same file reached twice. */
  identity: string;
}

/** All parts of a split GGUF given its first part, or an error naming the missing one. */
export function splitParts(first: string): string[] {
  const m = SPLIT_RE.exec(basename(first));
  if (!m) return [first];
  const total = Number(m[3]);
  const width = m[2]!.length;
  const parts: string[] = [];
  for (let i = 1; i <= total; i++) {
    const part = join(dirname(first), `${m[1]}-${String(i).padStart(width, "0")}-of-${m[3]}.gguf`);
    if (!existsSync(part)) throw new Error(`split part ${i} of ${total} is missing: ${part}`);
    parts.push(part);
  }
  return parts;
}

export function inspectCandidate(candidate: Candidate): InspectedCandidate {
  let identity = candidate.path;
  let files = [candidate.path];
  try {
    const st = statSync(candidate.path);
    identity = `${st.dev}:${st.ino}`;
    if (candidate.kind === "hf-folder") {
      const folder = readHfFolder(candidate.path);
      const summary = summarizeHfFolder(folder);
      const sizeBytes = folder.weightFiles.reduce((n, f) => n + statSync(f).size, 0);
      return { candidate, files, sizeBytes, summary, identity };
    }
    files = splitParts(candidate.path);
    const parts: GgufFile[] = files.map((f) => readGguf(f, { maxArrayLength: DISCOVERY_MAX_ARRAY }));
    const summary = summarizeGguf(parts);
    return { candidate, files, sizeBytes: parts.reduce((n, p) => n + p.fileSize, 0), summary, identity };
  } catch (e) {
    let sizeBytes = 0;
    try {
      sizeBytes = statSync(candidate.path).size;
    } catch {
      // the error below already says why
    }
    return { candidate, files, sizeBytes, error: (e as Error).message, identity };
  }
}

/** What changes when a candidate's files change: size, mtime and inode of each; undefined when unreadable. */
function stampOf(candidate: Candidate): string | undefined {
  try {
    if (candidate.kind === "hf-folder") {
      const dir = candidate.path;
      return [fileStatKey(dir), ...readdirSync(dir).sort().map((f) => fileStatKey(join(dir, f)))].join("\n");
    }
    if (!SPLIT_RE.test(basename(candidate.path))) return fileStatKey(candidate.path);
    // A split model also changes when a part appears or goes: the folder's mtime says so.
    const parts = readdirSync(dirname(candidate.path)).filter((f) => SPLIT_RE.exec(f)?.[1] === SPLIT_RE.exec(basename(candidate.path))?.[1]);
    return [fileStatKey(dirname(candidate.path)), ...parts.sort().map((f) => fileStatKey(join(dirname(candidate.path), f)))].join("\n");
  } catch {
    return undefined;
  }
}

/**
 * Remembers inspections by file identity (path, size, mtime, inode), so a rescan re-reads only
 * the headers of files that changed. `prune()` forgets candidates the last scan did not meet.
 */
export class InspectionMemo {
  private readonly entries = new Map<string, { stamp: string; item: InspectedCandidate }>();
  private readonly seen = new Set<string>();

  inspect(candidate: Candidate): InspectedCandidate {
    const key = `${candidate.kind}\0${candidate.path}`;
    this.seen.add(key);
    const stamp = stampOf(candidate);
    const hit = this.entries.get(key);
    if (stamp !== undefined && hit?.stamp === stamp) return { ...hit.item, candidate };
    const item = inspectCandidate(candidate);
    if (stamp === undefined) this.entries.delete(key);
    else this.entries.set(key, { stamp, item });
    return item;
  }

  prune(): void {
    for (const key of this.entries.keys()) if (!this.seen.has(key)) this.entries.delete(key);
    this.seen.clear();
  }
}
