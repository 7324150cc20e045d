import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/** What a probe found for one file identity (and runtime and load settings). */
export interface Verdict {
  /** The model file probed (real path). */
  file: string;
  size: number;
  mtimeMs: number;
  ok: boolean;
  /** Why it is unusable, in llama.cpp's words where it gave some. */
  reason?: string;
  /** When it was probed (ms since epoch) and how long the probe took. */
  probedAt: number;
  probeMs: number;
}

interface CacheFile {
  version: 1;
  verdicts: Record<string, Verdict>;
}

/** Entries kept; the oldest probes are dropped first. */
const MAX_ENTRIES = 1000;

function isVerdict(v: unknown): v is Verdict {
  const o = v as Verdict;
  return typeof o === "object" && o !== null && typeof o.file === "string" && typeof o.size === "number" && typeof o.mtimeMs === "number" && typeof o.ok === "boolean" && typeof o.probedAt === "number";
}

/**
 * Probe verdicts on disk (one JSON file in Shimmy's cache dir), keyed by VerdictKey. Written to a
 * temp file and renamed into place, merged with what other processes wrote meanwhile; a missing,
 * corrupt or unwritable file only means probing again.
 */
export class VerdictCache {
  private entries: Map<string, Verdict> | undefined;

  constructor(readonly path: string) {}

  private read(): Map<string, Verdict> {
    try {
      const parsed = JSON.parse(readFileSync(this.path, "utf8")) as CacheFile;
      if (parsed?.version !== 1 || typeof parsed.verdicts !== "object" || parsed.verdicts === null) return new Map();
      return new Map(Object.entries(parsed.verdicts).filter(([, v]) => isVerdict(v)));
    } catch {
      return new Map();
    }
  }

  private all(): Map<string, Verdict> {
    return (this.entries ??= this.read());
  }

  get(key: string): Verdict | undefined {
    return this.all().get(key);
  }

  /** The latest verdict for a file as it is now (size and mtime), under any runtime or settings. */
  latestForFile(file: string, size: number, mtimeMs: number): Verdict | undefined {
    let best: Verdict | undefined;
    for (const v of this.all().values()) {
      if (v.file === file && v.size === size && v.mtimeMs === mtimeMs && (!best || v.probedAt > best.probedAt)) best = v;
    }
    return best;
  }

  /** Records a verdict; returns false when the file could not be written (kept in memory then). */
  set(key: string, verdict: Verdict): boolean {
    const merged = this.read();
    for (const [k, v] of this.all()) if (!merged.has(k)) merged.set(k, v);
    merged.set(key, verdict);
    const kept = [...merged.entries()].sort((a, b) => b[1].probedAt - a[1].probedAt).slice(0, MAX_ENTRIES);
    this.entries = new Map(kept);
    const tmp = `${this.path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      writeFileSync(tmp, JSON.stringify({ version: 1, verdicts: Object.fromEntries(kept) } satisfies CacheFile));
      renameSync(tmp, this.path);
      return true;
    } catch {
      rmSync(tmp, { force: true });
      return false;
    }
  }
}
