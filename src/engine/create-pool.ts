import type { Config } from "../config/config.js";
import { ConversionCache } from "../convert/cache.js";
import type { ConvertProgress } from "../convert/convert.js";
import { Registry } from "../registry/registry.js";
import { getRuntime } from "./llama.js";
import { ModelPool } from "./model-pool.js";

/** A ModelPool wired from the Config: the shared runtime, the conversion cache, the load options. */
export function createModelPool(config: Config, registry = new Registry(config), onConvertProgress?: (model: string, p: ConvertProgress) => void): ModelPool {
  return new ModelPool(registry, {
    ...config,
    runtime: () => getRuntime({ gpu: config.gpu, threads: config.threads }),
    conversions: new ConversionCache(config.cacheDir),
    onConvertProgress,
  });
}
