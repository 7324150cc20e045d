import type { Llama } from "node-llama-cpp";
import type { ConversionCache } from "../convert/cache.js";
import type { ConvertProgress, RequestedType } from "../convert/convert.js";
import type { ModelSpec } from "../discovery/types.js";
import type { Registry } from "../registry/registry.js";
import { ModelLoadError, ModelUnusableError } from "./errors.js";
import { LoadedModel, type LoadOptions } from "./loaded-model.js";
import { unservableReason } from "./servability.js";

export interface PoolOptions extends LoadOptions {
  /** Provides the node-llama-cpp runtime, created on the first load. */
  runtime: () => Promise<Llama>;
  /** Turns SafeTensors folders into cached GGUFs on their first request. */
  conversions: ConversionCache;
  convertType: RequestedType;
  onConvertProgress?: (model: string, p: ConvertProgress) => void;
}

export interface LoadedModelInfo {
  name: string;
  contextSize: number;
  slots: number;
  busySlots: number;
  queued: number;
  loadMs: number;
  lastUsed: number;
}

/**
 * Loaded models by name. Loads on first request (JIT), shares one load among concurrent first
 * requests, keeps models loaded. Eviction policy (LRU, TTL, memory budget) plugs in at
 * `beforeLoad`; for now every model stays until shutdown.
 */
export class ModelPool {
  private readonly loaded = new Map<string, LoadedModel>();
  private readonly loading = new Map<string, Promise<LoadedModel>>();
  private closed = false;

  constructor(private readonly registry: Registry, private readonly options: PoolOptions) {}

  /** The spec for a name, or a typed error: ModelNotFoundError, ModelUnusableError. */
  resolve(name: string): ModelSpec {
    const spec = this.registry.get(name);
    const reason = unservableReason(spec);
    if (reason) throw new ModelUnusableError(spec.name, reason);
    return spec;
  }

  async acquire(name: string): Promise<LoadedModel> {
    if (this.closed) throw new Error("server is shutting down");
    const spec = this.resolve(name);
    const ready = this.loaded.get(spec.name);
    if (ready) return ready;
    let pending = this.loading.get(spec.name);
    if (!pending) {
      pending = this.load(spec);
      this.loading.set(spec.name, pending);
      pending.finally(() => this.loading.delete(spec.name)).catch(() => undefined);
    }
    return pending;
  }

  private async load(spec: ModelSpec): Promise<LoadedModel> {
    try {
      const ggufPath =
        spec.format === "safetensors"
          ? await this.options.conversions.ensure(spec.files[0]!, this.options.convertType, (p) => this.options.onConvertProgress?.(spec.name, p))
          : spec.files[0]!;
      const llama = await this.options.runtime();
      const model = await LoadedModel.load(llama, spec, ggufPath, this.options);
      if (this.closed) {
        await model.dispose();
        throw new Error("server is shutting down");
      }
      this.loaded.set(spec.name, model);
      return model;
    } catch (e) {
      if (e instanceof ModelLoadError) throw e;
      throw new ModelLoadError(spec.name, e);
    }
  }

  isLoaded(name: string): boolean {
    return this.loaded.has(name);
  }

  info(): LoadedModelInfo[] {
    return [...this.loaded.values()].map((m) => ({
      name: m.spec.name,
      contextSize: m.contextSize,
      slots: m.slots.slots.length,
      busySlots: m.slots.busyCount,
      queued: m.slots.queueLength,
      loadMs: Math.round(m.loadMs),
      lastUsed: m.lastUsed,
    }));
  }

  get inFlight(): number {
    let n = 0;
    for (const m of this.loaded.values()) n += m.inFlight;
    return n;
  }

  /** Unloads everything; later acquires fail. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.loading.values()]);
    const models = [...this.loaded.values()];
    this.loaded.clear();
    await Promise.all(models.map((m) => m.dispose()));
  }
}
