import type { Llama } from "node-llama-cpp";
import type { Config } from "../config/config.js";
import { existsSync } from "node:fs";
import { resolve as resolvePath } from "node:path";
import type { ConversionCache } from "../convert/cache.js";
import type { ConvertProgress, RequestedType } from "../convert/convert.js";
import type { ModelSpec } from "../discovery/types.js";
import { ModelNotFoundError, type Registry } from "../registry/registry.js";
import { ModelLoadError, ModelUnusableError } from "./errors.js";
import { LoadedModel, type LoadOptions } from "./loaded-model.js";
import { pairDraftModel } from "./speculative/draft-pairing.js";
import type { ProbeGate, UnusableModel } from "./isolation/probe-gate.js";
import type { PoolThreadReserve } from "./pool-reserve.js";
import { isEmbeddingOnly, type ModelUse, servableModels, unservableReason } from "./servability.js";
import type { OneTokenThreads } from "./thread-chooser.js";
import type { PromptCacheStats } from "./prompt-cache/store.js";
import { fileStatKeyOrGone } from "../formats/file-stat-key.js";

export interface PoolOptions extends LoadOptions, Pick<Config, "draftModel" | "draftAuto"> {
  /** Provides the node-llama-cpp runtime, created on the first load. */
  runtime: () => Promise<Llama>;
  /** Turns SafeTensors folders into cached GGUFs on their first request. */
  conversions: ConversionCache;
  convertType: RequestedType;
  onConvertProgress?: (model: string, p: ConvertProgress) => void;
  maxLoadedModels: number;
  memoryBudgetBytes: number;
  /** Default idle time before unloading; 0 = right after the request, negative = never. */
  keepAliveMs: number;
  /** Parks libuv's spare pool threads while models are loaded and lends one to each load. */
  libuvReserve?: PoolThreadReserve;
  /** Tries each model file in a child process before it is loaded here (crash isolation); absent = off. */
  gate?: ProbeGate;
  /** Told about loads and unloads (for logs). */
  onEvent?: (event: { type: "load" | "unload"; model: string; reason?: string; ms?: number; draftModel?: string; note?: string }) => void;
}

export interface LoadedModelInfo {
  name: string;
  contextSize: number;
  slots: number;
  busySlots: number;
  queued: number;
  pins: number;
  memoryBytes: number;
  /** How long its load took (ms; not counting a SafeTensors conversion). */
  loadMs: number;
  /** Threads one-token steps use now, and the measured ms per one-token step by thread count. */
  oneTokenThreads: OneTokenThreads;
  /** When the idle timer will unload it (ms since epoch), null = not scheduled. */
  expiresAt: number | null;
  /** Its idle time before unloading (negative: never; 0: right after its last request). */
  keepAliveMs: number;
}

/** A loaded model held by one request; release it when the request is over. */
export interface ModelLease {
  model: LoadedModel;
  /** Unpins the model; once nothing holds it, its idle time (keep-alive) starts. */
  release(): void;
}

/** The longest delay setTimeout honours. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Entry {
  model: LoadedModel;
  keepAliveMs: number;
  timer?: NodeJS.Timeout;
  expiresAt: number | null;
  /** The model's files as loaded (modelStamp), to notice a rescan that finds them changed. */
  stamp: string;
  /** Its files went or changed on disk: unloads once idle, and new requests wait for that. */
  stale?: boolean;
}

/** Size and mtime of a model's files (and adapter); "-" for a file that is gone. */
function modelStamp(spec: ModelSpec): string {
  const files = [...spec.files, ...(spec.lora ? [spec.lora] : [])];
  return `${spec.sizeBytes}|${files.map(fileStatKeyOrGone).join("|")}`;
}

/**
 * Loaded models by name. Loads on first request (JIT) and shares one load among concurrent first
 * requests. Holds at most `maxLoadedModels` models within `memoryBudgetBytes`: to make room, the
 * least recently used *idle* model is unloaded; a model with requests in flight never is (a load
 * that cannot make room waits until a model goes idle). Idle models unload after keep-alive.
 * Loading one model never holds up requests to models already loaded here: the load runs on a
 * libuv pool thread borrowed from `libuvReserve`, while the decodes keep theirs (docs/configuration.md).
 */
export class ModelPool {
  private readonly loaded = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<LoadedModel>>();
  /** Requests waiting for their model's load, by model name. */
  private readonly awaitingLoad = new Map<string, number>();
  private readonly idleWaiters: (() => void)[] = [];
  /** Loads run one at a time, so two loads cannot both see room for one model. */
  private loadChain: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly registry: Registry, private readonly options: PoolOptions) {}

  /** The spec for a name, or a typed error: ModelNotFoundError, ModelUnusableError (also: an embedding model asked to generate). */
  resolve(name: string, use: ModelUse = "generate"): ModelSpec {
    const spec = this.registry.find(name);
    // Offer what /v1/models lists.
    if (!spec) throw new ModelNotFoundError(name, this.servable().map((m) => m.name));
    const reason = unservableReason(spec, use);
    if (reason) throw new ModelUnusableError(spec.name, reason);
    const crashed = this.options.gate?.knownUnusable(spec);
    if (crashed) throw new ModelUnusableError(spec.name, `${crashed.file} ${crashed.reason}`);
    return spec;
  }

  /** The models that can answer requests: servable, and not known to crash llama.cpp. */
  servable(): ModelSpec[] {
    const gate = this.options.gate;
    const specs = servableModels(this.registry.all());
    return gate ? specs.filter((s) => !gate.knownUnusable(s)) : specs;
  }

  /** Models whose file crashed a probe (this run or a cached verdict for the file as it is now). */
  unusable(): UnusableModel[] {
    const gate = this.options.gate;
    if (!gate) return [];
    return servableModels(this.registry.all()).flatMap((s) => {
      const known = gate.knownUnusable(s);
      return known ? [{ model: known.model, file: known.file, reason: known.reason }] : [];
    });
  }

  /** Probe children this pool has started (0 when isolation is off). */
  get probesRun(): number {
    return this.options.gate?.probesRun ?? 0;
  }

  /**
   * Loads (or finds) the model and pins it for one request. `keepAliveMs` (a request's Ollama
   * keep_alive) sets how long the model stays loaded once idle; unset, the pool default does. As
   * in Ollama, every request sets it anew, and the one that started last decides.
   */
  async acquire(name: string, keepAliveMs?: number, use: ModelUse = "generate"): Promise<ModelLease> {
    if (this.closed) throw new Error("server is shutting down");
    const spec = this.resolve(name, use);
    // The file changed on disk: the old load finishes its requests and goes before the new one loads.
    while (this.loaded.get(spec.name)?.stale) {
      await new Promise<void>((wake) => this.idleWaiters.push(wake));
      if (this.closed) throw new Error("server is shutting down");
    }
    const model = this.loaded.get(spec.name)?.model ?? (await this.awaitLoad(spec));
    const entry = this.loaded.get(spec.name);
    if (!entry || entry.model !== model || entry.stale) return this.acquire(name, keepAliveMs, use); // unloaded (or retired) between load and pin
    this.pin(entry, keepAliveMs ?? this.options.keepAliveMs);
    let released = false;
    return {
      model,
      release: () => {
        if (released) return;
        released = true;
        this.unpin(entry);
      },
    };
  }

  /** Runs `fn` with the model pinned; the usual way to use a model for one request. */
  async use<T>(name: string, fn: (model: LoadedModel) => Promise<T>, keepAliveMs?: number, use: ModelUse = "generate"): Promise<T> {
    const lease = await this.acquire(name, keepAliveMs, use);
    try {
      return await fn(lease.model);
    } finally {
      lease.release();
    }
  }

  private pin(entry: Entry, keepAliveMs: number): void {
    entry.keepAliveMs = keepAliveMs;
    entry.model.pins++;
    entry.model.lastUsed = Date.now();
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.expiresAt = null;
  }

  private unpin(entry: Entry): void {
    const model = entry.model;
    model.pins--;
    model.lastUsed = Date.now();
    if (model.pins > 0 || this.loaded.get(model.spec.name) !== entry) return;
    if (entry.keepAliveMs === 0) {
      void this.unload(model.spec.name, "keep_alive 0");
    } else if (entry.keepAliveMs > 0) {
      entry.expiresAt = Date.now() + entry.keepAliveMs;
      this.armIdleTimer(entry, entry.expiresAt);
    }
    for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /**
   * Unloads the idle model at `expiresAt`. Node fires a timer longer than 2^31-1 ms (~24.8 days)
   * at once, so a longer keep-alive waits in steps of at most that.
   */
  private armIdleTimer(entry: Entry, expiresAt: number): void {
    const left = expiresAt - Date.now();
    entry.timer = left > MAX_TIMER_MS
      ? setTimeout(() => this.armIdleTimer(entry, expiresAt), MAX_TIMER_MS)
      : setTimeout(() => void this.unload(entry.model.spec.name, "idle keep-alive expired"), Math.max(0, left));
    entry.timer.unref();
  }

  private async awaitLoad(spec: ModelSpec): Promise<LoadedModel> {
    this.awaitingLoad.set(spec.name, (this.awaitingLoad.get(spec.name) ?? 0) + 1);
    try {
      return await this.loadShared(spec);
    } finally {
      const n = this.awaitingLoad.get(spec.name)! - 1;
      if (n === 0) this.awaitingLoad.delete(spec.name);
      else this.awaitingLoad.set(spec.name, n);
    }
  }

  private loadShared(spec: ModelSpec): Promise<LoadedModel> {
    let pending = this.loading.get(spec.name);
    if (!pending) {
      pending = this.load(spec);
      this.loading.set(spec.name, pending);
      pending.finally(() => this.loading.delete(spec.name)).catch(() => undefined);
    }
    return pending;
  }

  /** Unloads least-recently-used idle models until `spec` fits; waits while every model is busy. */
  private async makeRoom(spec: ModelSpec): Promise<void> {
    for (;;) {
      const entries = [...this.loaded.values()];
      const used = entries.reduce((n, e) => n + e.model.memoryBytes, 0);
      const needCount = entries.length + 1 > this.options.maxLoadedModels;
      const needBytes = entries.length > 0 && used + spec.sizeBytes > this.options.memoryBudgetBytes;
      if (!needCount && !needBytes) return;
      const idle = entries.filter((e) => e.model.pins === 0).sort((a, b) => a.model.lastUsed - b.model.lastUsed);
      if (idle.length > 0) {
        await this.unload(idle[0]!.model.spec.name, needCount ? `max loaded models (${this.options.maxLoadedModels}) reached` : "memory budget");
        continue;
      }
      if (this.closed) throw new Error("server is shutting down");
      await new Promise<void>((wake) => this.idleWaiters.push(wake));
    }
  }

  private async load(spec: ModelSpec): Promise<LoadedModel> {
    const giveBack = this.options.libuvReserve?.borrow();
    try {
      const ggufPath = await this.ggufOf(spec);
      let draft = await this.draftFile(spec, ggufPath);
      const model = await this.serialized(async () => {
        await this.makeRoom(spec);
        // After making room: the probe child holds the model in memory too, while it runs.
        await this.options.gate?.check(spec, ggufPath);
        let draftRefused: string | undefined;
        if (draft?.spec && this.options.gate) {
          // A draft model file is tried like any other: one that crashes llama.cpp is not loaded here.
          try {
            await this.options.gate.check(draft.spec, draft.ggufPath);
          } catch (e) {
            draftRefused = `draft model "${draft.name}" is not used: ${e instanceof Error ? e.message : String(e)}`;
            draft = undefined;
          }
        }
        return LoadedModel.load(await this.options.runtime(), spec, ggufPath, { ...this.options, draft, draftRefused });
      });
      if (this.closed) {
        await model.dispose();
        throw new Error("server is shutting down");
      }
      this.loaded.set(spec.name, { model, keepAliveMs: this.options.keepAliveMs, expiresAt: null, stamp: modelStamp(spec) });
      if (this.loaded.size === 1) this.options.libuvReserve?.hold();
      this.options.onEvent?.({ type: "load", model: spec.name, ms: Math.round(model.loadMs), ...(model.draftModelName && { draftModel: model.draftModelName }), ...(model.draftRefusal && { note: model.draftRefusal }) });
      return model;
    } catch (e) {
      if (e instanceof ModelLoadError || e instanceof ModelUnusableError) throw e;
      throw new ModelLoadError(spec.name, e);
    } finally {
      giveBack?.();
    }
  }

  /** The GGUF a spec loads: its own file, or its SafeTensors folder converted (once, cached). */
  private ggufOf(spec: ModelSpec): Promise<string> {
    if (spec.format !== "safetensors") return Promise.resolve(spec.files[0]!);
    return this.options.conversions.ensure(spec.files[0]!, this.options.convertType, (p) => this.options.onConvertProgress?.(spec.name, p));
  }

  /**
   * The draft model to load beside `spec` (speculative decoding): --draft-model (a discovered
   * model's name or a GGUF path), else with --draft-auto its pair among the discovered models
   * (pairDraftModel); absent when unused or unpaired.
   */
  /** Throws when --draft-model names neither a discovered model nor a GGUF file: checked at start, so a typo does not fail every load. */
  checkDraftModel(): void {
    const name = this.options.draftModel;
    if (name === undefined || this.registry.find(name) || (name.toLowerCase().endsWith(".gguf") && existsSync(name))) return;
    throw new Error(`draft model "${name}" is neither a discovered model nor a GGUF file (--draft-model)`);
  }

  private async draftFile(spec: ModelSpec, ggufPath: string): Promise<LoadOptions["draft"]> {
    if ((this.options.speculative !== "draft" && this.options.speculative !== "auto") || isEmbeddingOnly(spec)) return undefined;
    const name = this.options.draftModel;
    if (name === undefined) {
      const pair = this.options.draftAuto ? pairDraftModel(spec, ggufPath, servableModels(this.registry.all())) : undefined;
      return pair && { name: pair.name, ggufPath: pair.files[0]!, spec: pair };
    }
    const named = this.registry.find(name);
    // The draft model itself, when asked for, runs without a copy of itself beside it.
    if (named) return named.name === spec.name ? undefined : { name: named.name, ggufPath: await this.ggufOf(named), spec: named };
    if (name.toLowerCase().endsWith(".gguf") && existsSync(name)) return resolvePath(name) === resolvePath(ggufPath) ? undefined : { name, ggufPath: resolvePath(name) };
    throw new Error(`draft model "${name}" is neither a discovered model nor a GGUF file`);
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.loadChain.then(fn, fn);
    this.loadChain = run.catch(() => undefined);
    return run;
  }

  /** Unloads a model now if nothing holds it; returns whether it did. */
  async unload(name: string, reason = "requested"): Promise<boolean> {
    const entry = this.loaded.get(name);
    if (!entry || entry.model.pins > 0) return false;
    if (entry.timer) clearTimeout(entry.timer);
    this.loaded.delete(name);
    // Counted with the map, before any await: holds and drops then always pair up.
    if (this.loaded.size === 0) this.options.libuvReserve?.drop();
    await entry.model.dispose();
    this.options.onEvent?.({ type: "unload", model: name, reason });
    for (const wake of this.idleWaiters.splice(0)) wake();
    return true;
  }

  /**
   * Ollama's keep_alive 0 without a request: unloads the model now if idle, else makes it
   * unload once its requests in flight are done (unless a request started later sets another
   * keep-alive). Never loads it.
   */
  async unloadWhenIdle(name: string): Promise<void> {
    const entry = this.loaded.get(name);
    if (!entry) return;
    entry.keepAliveMs = 0;
    await this.unload(name, "keep_alive 0");
  }

  /**
   * After a rescan: a loaded model whose name is gone or whose files changed unloads now if idle,
   * else once its requests in flight finish; the next request loads (and probes) the current file.
   */
  async retireStale(): Promise<string[]> {
    const retired: string[] = [];
    for (const [name, entry] of this.loaded) {
      if (entry.stale) continue;
      const now = this.registry.find(name);
      const gone = !now || now.name !== name;
      if (!gone && modelStamp(now) === entry.stamp) continue;
      entry.stale = true;
      entry.keepAliveMs = 0;
      retired.push(name);
      await this.unload(name, gone ? "its model is no longer on disk" : "its file changed on disk");
    }
    return retired;
  }

  isLoaded(name: string): boolean {
    return this.loaded.has(name);
  }

  info(): LoadedModelInfo[] {
    return [...this.loaded.values()].map(({ model: m, expiresAt, keepAliveMs }) => ({
      name: m.spec.name,
      contextSize: m.contextSize,
      slots: m.slots.slots.length,
      busySlots: m.slots.busyCount,
      queued: m.slots.queueLength,
      pins: m.pins,
      memoryBytes: m.memoryBytes,
      loadMs: m.loadMs,
      oneTokenThreads: m.oneTokenThreads,
      expiresAt,
      keepAliveMs,
    }));
  }

  /** Every loaded model's slots: busy or not, and how many tokens each has cached. */
  slotInfo(): { name: string; contextSize: number; queued: number; slots: { id: number; busy: boolean; cachedTokens: number }[] }[] {
    return [...this.loaded.values()].map(({ model: m }) => ({
      name: m.spec.name,
      contextSize: m.contextSize,
      queued: m.slots.queueLength,
      slots: m.slots.slots.map((s) => ({ id: s.id, busy: s.busy, cachedTokens: s.tokens.length })),
    }));
  }

  /** The prompt cache's counters and size; undefined when it is off. */
  promptCacheStats(): PromptCacheStats | undefined {
    return this.options.promptStates?.store.stats();
  }

  /** Requests waiting for a model that is loading (not yet in a slot queue), by model name. */
  waitingForLoad(): ReadonlyMap<string, number> {
    return this.awaitingLoad;
  }

  /** Requests holding a model right now (queued or generating). */
  get inFlight(): number {
    let n = 0;
    for (const e of this.loaded.values()) n += e.model.pins;
    return n;
  }

  /** Cuts every generation on every loaded model; resolves once their decode loops no longer use the models. */
  async stopGenerations(): Promise<void> {
    await Promise.all([...this.loaded.values()].map((e) => e.model.stopGenerations()));
  }

  /** Unloads everything; later acquires fail. */
  async close(): Promise<void> {
    this.closed = true;
    this.options.gate?.close();
    for (const wake of this.idleWaiters.splice(0)) wake();
    await Promise.allSettled([...this.loading.values()]);
    const entries = [...this.loaded.values()];
    this.loaded.clear();
    if (entries.length > 0) this.options.libuvReserve?.drop();
    for (const e of entries) if (e.timer) clearTimeout(e.timer);
    await Promise.all(entries.map((e) => e.model.dispose()));
    await this.options.promptWorker?.close();
  }
}
