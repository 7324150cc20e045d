import { type Hash, createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, rename, stat, truncate, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { PullError, isAbort } from "./errors.js";
import { type HttpOptions, backoff, isRetryableStatus, networkReason } from "./http.js";

/** What the finished file must hash to: a sha256 (LFS files, Ollama layers) or a git blob id (small Hub files). */
export type ExpectedDigest = { algorithm: "sha256"; hex: string } | { algorithm: "git-blob-sha1"; hex: string };

export interface BlobDownload {
  url: string;
  headers?: Record<string, string>;
  /** The final path; the bytes grow in `<dest>.incomplete` until verified. */
  dest: string;
  size?: number;
  expected?: ExpectedDigest;
  /** Names the file in errors. */
  label: string;
  /** The error for a status that retrying cannot mend (401, 403, 404, …). */
  describeStatus: (res: Response) => PullError;
  onProgress?: (completed: number, total: number | undefined) => void;
}

export const INCOMPLETE_SUFFIX = ".incomplete";

/** The running hash of the bytes on disk; git blob ids hash a `blob <size>\0` header first. */
class Digests {
  private sha256!: Hash;
  private git?: Hash;

  constructor(private readonly expected: ExpectedDigest | undefined, private readonly size: number | undefined) {
    this.reset();
  }

  reset(): void {
    this.sha256 = createHash("sha256");
    this.git = undefined;
    if (this.expected?.algorithm === "git-blob-sha1" && this.size !== undefined) this.git = createHash("sha1").update(`blob ${this.size}\0`);
  }

  update(chunk: Uint8Array): void {
    this.sha256.update(chunk);
    this.git?.update(chunk);
  }

  /** The mismatch, described, or undefined when the bytes are the expected ones. */
  mismatch(): string | undefined {
    const sha256 = this.sha256.digest("hex");
    if (this.expected?.algorithm === "sha256" && sha256 !== this.expected.hex.toLowerCase()) return `sha256 ${sha256}, expected ${this.expected.hex}`;
    if (this.git && this.expected) {
      const id = this.git.digest("hex");
      if (id !== this.expected.hex.toLowerCase()) return `git blob id ${id}, expected ${this.expected.hex}`;
    }
    return undefined;
  }
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

async function hashFile(path: string, digests: Digests): Promise<void> {
  for await (const chunk of createReadStream(path)) digests.update(chunk as Buffer);
}

/**
 * Downloads one file into `<dest>.incomplete`, resuming what an earlier try left there (HTTP
 * Range), hashing while writing, retrying dropped connections from where they stopped; renames
 * it to `dest` only once its size and digest are right. A wrong digest removes the bytes.
 * An abort leaves the `.incomplete` file for the next run.
 */
export async function downloadVerified(d: BlobDownload, options: HttpOptions): Promise<void> {
  const partial = d.dest + INCOMPLETE_SUFFIX;
  await mkdir(dirname(d.dest), { recursive: true });
  const digests = new Digests(d.expected, d.size);
  let offset = await sizeOf(partial);
  if (d.size !== undefined && offset > d.size) {
    await truncate(partial, 0);
    offset = 0;
  }
  if (offset > 0) await hashFile(partial, digests);
  const restart = async (): Promise<void> => {
    await truncate(partial, 0).catch(() => undefined);
    digests.reset();
    offset = 0;
  };

  let failures = 0;
  while (d.size === undefined || offset < d.size) {
    let res: Response;
    try {
      const range: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
      res = await fetch(d.url, { headers: { ...d.headers, "accept-encoding": "identity", ...range }, redirect: "follow", signal: options.signal });
    } catch (e) {
      if (isAbort(e, options.signal)) throw e;
      failures = await backoff(failures, d.label, networkReason(e), options);
      continue;
    }
    if (res.status === 416 && offset > 0) {
      // The server has nothing past our bytes: the file is whole (unknown size) or we hold junk.
      await res.body?.cancel();
      if (d.size === undefined) break;
      await restart();
      continue;
    }
    if (isRetryableStatus(res.status)) {
      await res.body?.cancel();
      failures = await backoff(failures, d.label, `HTTP ${res.status}`, options);
      continue;
    }
    if (res.status !== 200 && res.status !== 206) {
      await res.body?.cancel();
      throw d.describeStatus(res);
    }
    if (res.status === 200 && offset > 0) await restart();
    else if (res.status === 206 && !res.headers.get("content-range")?.startsWith(`bytes ${offset}-`)) {
      await res.body?.cancel();
      throw new PullError(502, `${d.label}: the server answered a resume from byte ${offset} with ${res.headers.get("content-range") ?? "no Content-Range"}`);
    }
    const before = offset;
    const file = await open(partial, offset > 0 ? "a" : "w");
    try {
      for await (const chunk of res.body as AsyncIterable<Uint8Array> | null ?? []) {
        await file.write(chunk);
        digests.update(chunk);
        offset += chunk.length;
        if (d.size !== undefined && offset > d.size) throw new PullError(502, `${d.label}: the server sent more than the announced ${d.size} bytes`);
        d.onProgress?.(offset, d.size);
      }
    } catch (e) {
      if (e instanceof PullError || isAbort(e, options.signal)) throw e;
      failures = await backoff(offset > before ? 0 : failures, d.label, networkReason(e), options);
      continue;
    } finally {
      await file.close();
    }
    if (d.size === undefined) break;
    if (offset < d.size) failures = await backoff(offset > before ? 0 : failures, d.label, `the connection closed after ${offset} of ${d.size} bytes`, options);
  }

  const wrong = d.size !== undefined && offset !== d.size ? `${offset} bytes, expected ${d.size}` : digests.mismatch();
  if (wrong) {
    await unlink(partial).catch(() => undefined);
    throw new PullError(502, `${d.label}: the download does not match its digest (${wrong}); it was discarded, nothing was installed`);
  }
  await rename(partial, d.dest);
}
