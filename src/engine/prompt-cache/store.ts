import { createHash, randomBytes } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { sharedPrefixLength } from "../slots.js";
import { type FileStamp, stampsCurrent } from "./key.js";

/** One saved sequence state: `<id>.state` (llama.cpp's file) and `<id>.json` (this). */
export interface PromptCacheEntry {
  id: string;
  /** The model and context settings it was saved under (promptCacheKey). */
  key: string;
  /** The model's files as they were: an entry whose files changed is stale. */
  files: FileStamp[];
  /** The tokens whose KV state the file holds, in order from position 0. */
  tokens: readonly number[];
  /** The state file's size. */
  bytes: number;
  /** When it was saved or last restored (ms since epoch; the state file's mtime on disk). */
  lastUsed: number;
}

export interface PromptCacheStats {
  /** Requests that restored a saved state. */
  hits: number;
  /** Requests with a prompt of at least the minimum whose slot held less of it and nothing saved matched. */
  misses: number;
  /** States written. */
  saves: number;
  /** Bytes of the states written. */
  savedBytes: number;
  /** Entries removed to stay within the size bound. */
  evictions: number;
  /** Entries found unusable (truncated, corrupt, stale, refused by llama.cpp) and removed. */
  discarded: number;
  /** Bytes of the states kept now. */
  diskBytes: number;
  entries: number;
}

/** A state being written: the native save writes `tmpPath`, then `commit` makes it an entry. */
export interface PendingSave {
  tmpPath: string;
  commit(bytes: number): void;
  abort(): void;
}

const SIDECAR_FORMAT = "shimmy-prompt-cache/1";
const STATE = ".state";
const SIDECAR = ".json";
const TMP = ".tmp";

function entryId(key: string, tokens: readonly number[]): string {
  return createHash("sha256").update(key).update("\n").update(Uint32Array.from(tokens)).digest("hex").slice(0, 32);
}

function isSidecar(v: unknown): v is { format: string; key: string; files: FileStamp[]; tokens: number[]; bytes: number } {
  const o = v as Record<string, unknown> | null;
  return (
    typeof o === "object" && o !== null && o.format === SIDECAR_FORMAT && typeof o.key === "string" && Number.isSafeInteger(o.bytes) &&
    Array.isArray(o.files) && o.files.every((f) => typeof f?.path === "string" && typeof f?.size === "number" && typeof f?.mtimeMs === "number") &&
    Array.isArray(o.tokens) && o.tokens.length > 0 && o.tokens.every((t) => Number.isInteger(t) && t >= 0 && t < 2 ** 32)
  );
}

/**
 * Saved KV states of long prompt prefixes in one folder, bounded in bytes, least recently used
 * evicted first. Every write is a temporary file renamed into place (state first, then its
 * sidecar), so a crash leaves either a whole entry or leftovers that the next start removes.
 * Entries that cannot be trusted — a sidecar that does not parse, a state file of another size
 * or whose header names other tokens, model files that changed — are removed, never used.
 */
export class PromptCacheStore {
  private readonly entries = new Map<string, PromptCacheEntry>();
  private scanned: Promise<void> | undefined;
  private readonly writing = new Set<Promise<void>>();
  private readonly counts = { hits: 0, misses: 0, saves: 0, savedBytes: 0, evictions: 0, discarded: 0 };

  constructor(readonly dir: string, readonly maxBytes: number) {}

  stats(): PromptCacheStats {
    let diskBytes = 0;
    for (const e of this.entries.values()) diskBytes += e.bytes;
    return { ...this.counts, diskBytes, entries: this.entries.size };
  }

  countHit(): void {
    this.counts.hits++;
  }

  countMiss(): void {
    this.counts.misses++;
  }

  statePath(entry: Pick<PromptCacheEntry, "id">): string {
    return join(this.dir, entry.id + STATE);
  }

  /** The entry under `key` sharing the longest prefix with `tokens`, if that is at least `atLeast` (counted up to `limit`). */
  async find(key: string, tokens: readonly number[], atLeast: number, limit = tokens.length): Promise<{ entry: PromptCacheEntry; shared: number } | undefined> {
    await this.ready();
    let best: { entry: PromptCacheEntry; shared: number } | undefined;
    for (const entry of this.entries.values()) {
      if (entry.key !== key) continue;
      const shared = Math.min(sharedPrefixLength(entry.tokens, tokens), limit);
      if (shared >= atLeast && shared > (best?.shared ?? -1)) best = { entry, shared };
    }
    return best;
  }

  /**
   * Whether the entry's state file is the one its sidecar describes: its size, and the token count
   * and tokens in llama.cpp's header (magic u32, version u32, count u32, tokens u32 × count). The
   * magic and version are llama.cpp's to check.
   */
  async intact(entry: PromptCacheEntry): Promise<boolean> {
    let file;
    try {
      file = await open(this.statePath(entry), "r");
      if ((await file.stat()).size !== entry.bytes) return false;
      const header = Buffer.alloc(12 + 4 * entry.tokens.length);
      const { bytesRead } = await file.read(header, 0, header.length, 0);
      if (bytesRead !== header.length || header.readUInt32LE(8) !== entry.tokens.length) return false;
      for (let i = 0; i < entry.tokens.length; i++) if (header.readUInt32LE(12 + 4 * i) !== entry.tokens[i]) return false;
      return true;
    } catch {
      return false;
    } finally {
      await file?.close();
    }
  }

  /** Marks an entry just restored as most recently used (kept on disk as the state file's mtime). */
  touch(entry: PromptCacheEntry): void {
    entry.lastUsed = Date.now();
    const at = new Date(entry.lastUsed);
    this.track(utimes(this.statePath(entry), at, at).catch(() => undefined));
  }

  /** Removes an entry that cannot be used. */
  async discard(entry: Pick<PromptCacheEntry, "id">): Promise<void> {
    this.counts.discarded++;
    await this.remove(entry);
  }

  /**
   * Starts saving `tokens`' state under `key`: a temporary path for the native save to write, or
   * undefined when the same state is already kept (it is marked used) or the folder is unusable.
   */
  async beginSave(key: string, files: FileStamp[], tokens: readonly number[]): Promise<PendingSave | undefined> {
    await this.ready();
    const id = entryId(key, tokens);
    const existing = this.entries.get(id);
    if (existing) {
      this.touch(existing);
      return undefined;
    }
    try {
      await mkdir(this.dir, { recursive: true });
    } catch {
      return undefined;
    }
    const tmpPath = this.tmpPath(id);
    return {
      tmpPath,
      commit: (bytes) => this.track(this.commit({ id, key, files, tokens: [...tokens], bytes, lastUsed: Date.now() }, tmpPath)),
      abort: () => this.track(rm(tmpPath, { force: true }).catch(() => undefined)),
    };
  }

  /** Resolves once every write started so far has finished. */
  async settled(): Promise<void> {
    while (this.writing.size > 0) await Promise.allSettled([...this.writing]);
  }

  private track(write: Promise<void>): void {
    this.writing.add(write);
    void write.finally(() => this.writing.delete(write));
  }

  private async commit(entry: PromptCacheEntry, tmpPath: string): Promise<void> {
    try {
      await rename(tmpPath, this.statePath(entry));
      const sidecar = { format: SIDECAR_FORMAT, key: entry.key, files: entry.files, tokens: entry.tokens, bytes: entry.bytes };
      const sidecarTmp = this.tmpPath(entry.id);
      await writeFile(sidecarTmp, JSON.stringify(sidecar));
      await rename(sidecarTmp, this.sidecarPath(entry));
    } catch {
      await rm(tmpPath, { force: true }).catch(() => undefined);
      await this.remove(entry);
      return;
    }
    this.counts.saves++;
    this.counts.savedBytes += entry.bytes;
    // A state that extends an older one of the same key serves every prompt the older one did.
    for (const other of [...this.entries.values()]) {
      if (other.key === entry.key && other.tokens.length < entry.tokens.length && sharedPrefixLength(other.tokens, entry.tokens) === other.tokens.length) await this.remove(other);
    }
    this.entries.set(entry.id, entry);
    await this.evict();
  }

  /** `<id>.<pid>.<random>.tmp`: the writer's pid tells a later scan whether it may still be writing. */
  private tmpPath(id: string): string {
    return join(this.dir, `${id}.${process.pid}.${randomBytes(4).toString("hex")}${TMP}`);
  }

  private sidecarPath(entry: Pick<PromptCacheEntry, "id">): string {
    return join(this.dir, entry.id + SIDECAR);
  }

  private async remove(entry: Pick<PromptCacheEntry, "id">): Promise<void> {
    this.entries.delete(entry.id);
    // The sidecar first: a state file without one is a leftover the next scan removes.
    await rm(this.sidecarPath(entry), { force: true }).catch(() => undefined);
    await rm(this.statePath(entry), { force: true }).catch(() => undefined);
  }

  /** Least recently used entries go until the rest fit the bound (an entry larger than the bound goes too). */
  private async evict(): Promise<void> {
    let total = 0;
    for (const e of this.entries.values()) total += e.bytes;
    const byAge = [...this.entries.values()].sort((a, b) => a.lastUsed - b.lastUsed);
    for (const e of byAge) {
      if (total <= this.maxBytes) break;
      total -= e.bytes;
      this.counts.evictions++;
      await this.remove(e);
    }
  }

  private ready(): Promise<void> {
    return (this.scanned ??= this.scan());
  }

  /** Reads the folder once: keeps whole, current entries; removes leftovers and anything untrustworthy. */
  private async scan(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return;
    }
    const ids = new Set<string>();
    for (const name of names) {
      if (name.endsWith(SIDECAR)) ids.add(name.slice(0, -SIDECAR.length));
      // A save in progress in another process (its pid is in the name) is left alone; ours start after this scan.
      else if (name.endsWith(TMP) && !tmpOfLiveProcess(name)) await rm(join(this.dir, name), { force: true }).catch(() => undefined);
    }
    for (const name of names) {
      if (name.endsWith(STATE) && !ids.has(name.slice(0, -STATE.length))) await rm(join(this.dir, name), { force: true }).catch(() => undefined);
    }
    for (const id of ids) {
      const entry = await this.readEntry(id);
      if (entry) this.entries.set(id, entry);
      else await this.discard({ id });
    }
    await this.evict();
  }

  private async readEntry(id: string): Promise<PromptCacheEntry | undefined> {
    try {
      const sidecar: unknown = JSON.parse(await readFile(join(this.dir, id + SIDECAR), "utf8"));
      if (!isSidecar(sidecar) || entryId(sidecar.key, sidecar.tokens) !== id) return undefined;
      const st = await stat(join(this.dir, id + STATE));
      if (st.size !== sidecar.bytes || !(await stampsCurrent(sidecar.files))) return undefined;
      return { id, key: sidecar.key, files: sidecar.files, tokens: sidecar.tokens, bytes: sidecar.bytes, lastUsed: st.mtimeMs };
    } catch {
      return undefined;
    }
  }
}

/** Whether a temporary file's writer (its pid is in the name: `<id>.<pid>.<random>.tmp`) is still running. */
function tmpOfLiveProcess(name: string): boolean {
  const pid = Number(name.split(".")[1]);
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
