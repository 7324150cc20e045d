import { createHash } from "node:crypto";
import { realpathSync, statSync } from "node:fs";
import type { ModelSpec } from "../../discovery/types.js";
import { ModelUnusableError } from "../errors.js";
import type { LlamaRuntimeOptions } from "../llama.js";
import type { LoadOptions } from "../loaded-model.js";
import { type ProbeOutcome, runProbe } from "./probe.js";
import type { ProbeJob } from "./probe-job.js";
import { runtimeIdentity } from "./runtime-identity.js";
import { type Verdict, VerdictCache } from "./verdict-cache.js";

/** Greedy tokens a probe decodes: enough to run the decode graph and the sampler a few times. */
const PROBE_TOKENS = 4;

export interface ProbeGateOptions {
  /** The verdict cache file (in Shimmy's cache dir). */
  cachePath: string;
  runtime: LlamaRuntimeOptions;
  load: LoadOptions;
  timeoutMs: number;
  /** Told about every probe run (for logs). */
  onProbe?: (event: { model: string; file: string; ok: boolean; reason?: string; ms: number }) => void;
}

/** A model known to be unusable, and why. */
export interface UnusableModel {
  model: string;
  file: string;
  reason: string;
}

interface Remembered extends UnusableModel {
  key: string;
  ggufPath: string;
}

/**
 * Lets a model file into this process only after a short-lived child process has loaded it and
 * decoded a few tokens with it (probe-child.ts), so a file that makes llama.cpp abort kills the
 * child, not the server. Verdicts are cached on disk by file identity (real path, size, mtime),
 * the llama.cpp binary and the load settings; a changed file is probed again. Concurrent checks
 * of one file share one probe.
 */
export class ProbeGate {
  private readonly cache: VerdictCache;
  private readonly runtimeId: string;
  private readonly inFlight = new Map<string, Promise<ProbeOutcome>>();
  /** Unusable models by name: crashes this process saw (also those not cached: hangs) and cached ones looked up. */
  private readonly unusableByName = new Map<string, Remembered>();
  private readonly closing = new AbortController();
  /** Probe children started by this process. */
  probesRun = 0;

  constructor(private readonly options: ProbeGateOptions) {
    this.cache = new VerdictCache(options.cachePath);
    this.runtimeId = runtimeIdentity(options.runtime);
  }

  /** The identity a verdict is for; throws when a file cannot be read. */
  private key(spec: ModelSpec, ggufPath: string): { key: string; file: string; size: number; mtimeMs: number } {
    const files = (spec.format === "gguf" ? spec.files : [ggufPath]).concat(spec.lora ? [spec.lora] : []).map((f) => {
      const st = statSync(f);
      return [realpathSync(f), st.size, st.mtimeMs] as const;
    });
    const { ctxSize, ctxCap, parallel, batchSize, flashAttention } = this.options.load;
    const key = createHash("sha256")
      .update(JSON.stringify({ files, runtime: this.runtimeId, load: { ctxSize, ctxCap, parallel, batchSize, flashAttention }, tokens: PROBE_TOKENS }))
      .digest("hex")
      .slice(0, 32);
    const [file, size, mtimeMs] = files[0]!;
    return { key, file, size, mtimeMs };
  }

  private remember(spec: ModelSpec, ggufPath: string, key: string, file: string, reason: string): ModelUnusableError {
    this.unusableByName.set(spec.name, { model: spec.name, file, reason, key, ggufPath });
    return new ModelUnusableError(spec.name, `${file} ${reason}`);
  }

  /**
   * Resolves when the file may be loaded in this process. Throws ModelUnusableError when the
   * probe crashed (now or in a cached verdict), or the child's own error when it failed as an
   * ordinary load error would (not cached: it may be passing, e.g. memory).
   */
  async check(spec: ModelSpec, ggufPath: string): Promise<void> {
    const id = this.key(spec, ggufPath);
    const cached = this.cache.get(id.key);
    if (cached) {
      if (cached.ok) return;
      throw this.remember(spec, ggufPath, id.key, id.file, cached.reason ?? "crashed a probe");
    }
    const known = this.unusableByName.get(spec.name);
    if (known?.key === id.key) throw new ModelUnusableError(spec.name, `${known.file} ${known.reason}`);
    let pending = this.inFlight.get(id.key);
    if (!pending) {
      pending = this.probe(spec, ggufPath, id);
      this.inFlight.set(id.key, pending);
      void pending.finally(() => this.inFlight.delete(id.key));
    }
    const outcome = await pending;
    if (outcome.kind === "ok") return;
    if (outcome.kind === "error") throw new Error(outcome.message);
    throw this.remember(spec, ggufPath, id.key, id.file, outcome.reason);
  }

  private async probe(spec: ModelSpec, ggufPath: string, id: { key: string; file: string; size: number; mtimeMs: number }): Promise<ProbeOutcome> {
    const job: ProbeJob = {
      spec,
      ggufPath,
      runtime: { ...this.options.runtime, threads: 1 },
      load: probeLoadOptions(this.options.load),
      tokens: PROBE_TOKENS,
    };
    this.probesRun++;
    const outcome = await runProbe(job, this.options.timeoutMs, this.closing.signal);
    const ok = outcome.kind === "ok";
    const reason = outcome.kind === "crash" ? outcome.reason : outcome.kind === "error" ? outcome.message : undefined;
    this.options.onProbe?.({ model: spec.name, file: id.file, ok, reason, ms: outcome.ms });
    // A hang or a SIGKILL (the OOM killer) may say more about the machine than the file: refused, not cached.
    const lasting = ok || (outcome.kind === "crash" && !outcome.timedOut && outcome.signal !== "SIGKILL");
    if (lasting) {
      const verdict: Verdict = { file: id.file, size: id.size, mtimeMs: id.mtimeMs, ok, reason, probedAt: Date.now(), probeMs: outcome.ms };
      this.cache.set(id.key, verdict);
    }
    return outcome;
  }

  /** Whether a model is known unusable for its file as it is now: from this process's probes or the cache. Never probes. */
  knownUnusable(spec: ModelSpec): UnusableModel | undefined {
    try {
      const known = this.unusableByName.get(spec.name);
      if (known) {
        if (this.key(spec, known.ggufPath).key === known.key) return known;
        this.unusableByName.delete(spec.name);
      }
      if (spec.format !== "gguf") return undefined;
      const id = this.key(spec, spec.files[0]!);
      const cached = this.cache.get(id.key);
      if (!cached || cached.ok) return undefined;
      const remembered = { model: spec.name, file: id.file, reason: cached.reason ?? "crashed a probe", key: id.key, ggufPath: spec.files[0]! };
      this.unusableByName.set(spec.name, remembered);
      return remembered;
    } catch {
      // A file that cannot be read fails at load, as before.
      return undefined;
    }
  }

  /** Kills running probes (shutdown). */
  close(): void {
    this.closing.abort();
  }
}

/** The server's load settings, on one thread: the probe runs beside the server's own decoding. */
function probeLoadOptions(o: LoadOptions): LoadOptions {
  return { ctxSize: o.ctxSize, ctxCap: o.ctxCap, parallel: o.parallel, batchSize: o.batchSize, flashAttention: o.flashAttention, maxQueue: o.maxQueue, requestTimeoutMs: o.requestTimeoutMs, threads: 1, threadsAlternative: undefined, batchThreads: 1, speculative: "off", draftMax: 1, draftMin: 1 };
}

/** The latest cached verdict for a GGUF as it is now, under any runtime or settings (for `shimmy discover`). */
export function cachedVerdict(cachePath: string, file: string): Verdict | undefined {
  try {
    const st = statSync(file);
    return new VerdictCache(cachePath).latestForFile(realpathSync(file), st.size, st.mtimeMs);
  } catch {
    return undefined;
  }
}
