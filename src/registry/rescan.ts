import { type Dirent, type FSWatcher, readdirSync, watch } from "node:fs";
import { join } from "node:path";
import type { DiscoveryResult } from "../discovery/discover.js";
import type { SourceName } from "../discovery/types.js";
import type { Registry } from "./registry.js";

/** What one rescan changed, by model name. */
export interface RescanOutcome {
  added: string[];
  removed: string[];
  result: DiscoveryResult;
}

export interface RescanOptions {
  /** Watch the scanned folders and rescan when something in them changes. */
  watch: boolean;
  /** Rescan this often anyway (ms); 0 = never. Covers folders that cannot be watched or do not exist yet. */
  intervalMs: number;
  /** Quiet time after the last file event before rescanning (a copy in progress keeps it waiting). */
  debounceMs?: number;
  /** How deep below a scanned folder to watch (discovery's scan depth). */
  maxDepth?: number;
  /** Longest a steady stream of file events may put a rescan off. */
  maxWaitMs?: number;
  /** Told after every rescan (the pool retires models whose files went or changed). */
  onRescan?: (outcome: RescanOutcome) => void | Promise<void>;
  /** Told when a rescan or a watcher fails; scanning goes on. */
  onError?: (error: Error) => void;
}

/** Folders whose contents are models; explicit files are left to the periodic rescan. */
const WATCHED_SOURCES = new Set<SourceName>(["dir", "lmstudio", "hf-cache", "ollama"]);

/** Most folders watched one by one; past that, the periodic rescan covers the rest. */
const MAX_WATCHED_FOLDERS = 4096;

/** A folder and its subfolders down to `maxDepth`, as discovery walks them (hidden folders skipped). */
function foldersUnder(root: string, maxDepth: number): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number): void => {
    if (found.length >= MAX_WATCHED_FOLDERS) return;
    found.push(dir);
    if (depth >= maxDepth) return;
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory() && !e.name.startsWith(".") && e.name !== "node_modules") walk(join(dir, e.name), depth + 1);
  };
  walk(root, 0);
  return found;
}

/**
 * Keeps the registry in step with the disk while serving: file events in the scanned folders
 * (debounced) and a periodic timer trigger a rescan; `rescan()` does one on request. Rescans never
 * overlap: one asked for while another runs is run once after it, for every caller meanwhile.
 */
export class ModelRescanner {
  private readonly watchers = new Map<string, FSWatcher>();
  private running?: Promise<RescanOutcome>;
  private queued?: Promise<RescanOutcome>;
  private debounce?: NodeJS.Timeout;
  private firstEventAt?: number;
  private interval?: NodeJS.Timeout;
  private closed = false;
  /** Rescans done (for /health and tests). */
  count = 0;

  constructor(private readonly registry: Registry, private readonly options: RescanOptions) {}

  start(): void {
    this.armWatchers();
    if (this.options.intervalMs > 0) {
      this.interval = setInterval(() => void this.rescan().catch(() => undefined), this.options.intervalMs);
      this.interval.unref();
    }
  }

  /** Scans now (or right after the scan in progress) and resolves with what changed. */
  rescan(): Promise<RescanOutcome> {
    if (this.closed) return Promise.reject(new Error("server is shutting down"));
    if (!this.running) return this.begin();
    this.queued ??= this.running.catch(() => undefined).then(() => {
      this.queued = undefined;
      return this.begin();
    });
    return this.queued;
  }

  private begin(): Promise<RescanOutcome> {
    const run = (async () => {
      // Let the request or event that asked finish its own turn of the event loop first.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const before = new Set(this.registry.all().map((m) => m.name));
      const result = this.registry.refresh();
      const after = new Set(result.models.map((m) => m.name));
      this.count++;
      const outcome: RescanOutcome = {
        added: [...after].filter((n) => !before.has(n)),
        removed: [...before].filter((n) => !after.has(n)),
        result,
      };
      if (!this.closed) this.armWatchers();
      await this.options.onRescan?.(outcome);
      return outcome;
    })();
    this.running = run.finally(() => (this.running = undefined));
    this.running.catch((e: unknown) => this.options.onError?.(e as Error));
    return this.running;
  }

  /** Watches every scanned folder that exists now; drops watchers of folders no longer scanned. */
  private armWatchers(): void {
    if (!this.options.watch) return;
    const roots = this.registry.discovery.locations.filter((l) => l.exists && WATCHED_SOURCES.has(l.source)).map((l) => l.path);
    // Node 20's recursive watch on Linux misses removals and renames: there, each folder is watched on its own.
    const wanted = new Set(process.platform === "linux" ? roots.flatMap((r) => foldersUnder(r, this.options.maxDepth ?? 6)) : roots);
    for (const [path, watcher] of this.watchers) {
      if (!wanted.has(path)) {
        watcher.close();
        this.watchers.delete(path);
      }
    }
    for (const path of wanted) {
      if (this.watchers.has(path)) continue;
      try {
        const watcher = watch(path, { recursive: process.platform !== "linux", persistent: false }, () => this.onFileEvent());
        // A watched folder removed, or the OS out of watches: the periodic rescan still covers it.
        watcher.on("error", (e) => {
          watcher.close();
          this.watchers.delete(path);
          this.options.onError?.(e);
        });
        this.watchers.set(path, watcher);
      } catch (e) {
        this.options.onError?.(e as Error);
      }
    }
  }

  private onFileEvent(): void {
    if (this.closed) return;
    const now = Date.now();
    this.firstEventAt ??= now;
    if (this.debounce) clearTimeout(this.debounce);
    const quiet = this.options.debounceMs ?? 500;
    const left = this.firstEventAt + (this.options.maxWaitMs ?? 5000) - now;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.firstEventAt = undefined;
      void this.rescan().catch(() => undefined);
    }, Math.max(0, Math.min(quiet, left)));
    this.debounce.unref();
  }

  /** Folders watched now (for /health and tests). */
  watched(): string[] {
    return [...this.watchers.keys()];
  }

  close(): void {
    this.closed = true;
    if (this.debounce) clearTimeout(this.debounce);
    if (this.interval) clearInterval(this.interval);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }
}
