import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { FormatError } from "../formats/errors.js";
import { readGguf } from "../formats/gguf.js";
import { readHfFolder } from "../formats/hf-folder.js";
import { type ConvertProgress, convertHfFolder, type RequestedType } from "./convert.js";
import { ConvertError } from "./errors.js";

/** Bump when the converter's output for the same input changes, so old cache entries are not served. */
export const CONVERTER_VERSION = 1;

const STALE_TMP_MS = 60 * 60 * 1000;

/**
 * Converted GGUFs on disk, keyed by the source files' identity (path, size, mtime, inode) and the
 * conversion options. Written to a temp file and renamed into place, so a crash never leaves a
 * half file under a name that is served; concurrent requests in this process convert once.
 */
export class ConversionCache {
  private readonly inFlight = new Map<string, Promise<string>>();
  readonly dir: string;

  constructor(root: string) {
    this.dir = join(root, "converted");
  }

  key(folder: string, type: RequestedType): string {
    const hf = readHfFolder(folder);
    // modules.json and 1_Pooling/config.json: a sentence-transformers encoder's pooling type.
    const files = ["config.json", "tokenizer.json", "tekken.json", "tokenizer_config.json", "generation_config.json", "model.safetensors.index.json", "modules.json", join("1_Pooling", "config.json")]
      .map((f) => join(folder, f))
      .filter((f) => existsSync(f))
      .concat(hf.weightFiles);
    const identity = files.map((f) => {
      const st = statSync(f);
      return [f, st.size, st.mtimeMs, st.ino];
    });
    return createHash("sha256").update(JSON.stringify({ v: CONVERTER_VERSION, type, identity })).digest("hex").slice(0, 24);
  }

  pathFor(folder: string, type: RequestedType): string {
    const label = `${basename(dirname(folder))}_${basename(folder)}`.replace(/[^A-Za-z0-9._-]/g, "_");
    return join(this.dir, `${label}-${type}-${this.key(folder, type)}.gguf`);
  }

  /** The cached GGUF for a folder, converting first when needed. */
  async ensure(folder: string, type: RequestedType = "auto", onProgress?: (p: ConvertProgress) => void): Promise<string> {
    const target = this.pathFor(folder, type);
    if (existsSync(target)) return target;
    let pending = this.inFlight.get(target);
    if (!pending) {
      pending = this.convert(folder, target, type, onProgress);
      this.inFlight.set(target, pending);
      void pending.finally(() => this.inFlight.delete(target)).catch(() => undefined);
    }
    return pending;
  }

  private async convert(folder: string, target: string, type: RequestedType, onProgress?: (p: ConvertProgress) => void): Promise<string> {
    mkdirSync(this.dir, { recursive: true });
    this.removeStaleTemps();
    const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
    try {
      await convertHfFolder(folder, tmp, type, onProgress);
      verifyOutput(tmp, folder);
      renameSync(tmp, target);
      return target;
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
  }

  /** Leftovers of conversions that crashed (never served: they lack the final name). */
  private removeStaleTemps(): void {
    for (const f of readdirSync(this.dir)) {
      if (!f.includes(".gguf.tmp-")) continue;
      const p = join(this.dir, f);
      try {
        if (Date.now() - statSync(p).mtimeMs > STALE_TMP_MS) rmSync(p, { force: true });
      } catch {
        // another process removed or renamed it
      }
    }
  }
}

/** Reads the written GGUF back with the same checks discovery applies, so a bad file is never cached. */
function verifyOutput(gguf: string, folder: string): void {
  try {
    readGguf(gguf, { maxArrayLength: 0 });
  } catch (e) {
    if (e instanceof FormatError) throw new ConvertError(folder, `the converted GGUF is invalid: ${e.reason}`);
    throw e;
  }
}
