import type { Config } from "../config/config.js";
import { ConversionCache } from "../convert/cache.js";
import { Registry } from "../registry/registry.js";
import { getRuntime, runtimeOptionsFor } from "./llama.js";
import { ModelPool, type PoolOptions } from "./model-pool.js";
import { poolThreadReserve } from "./pool-reserve.js";

/** A ModelPool wired from the Config: the shared runtime, the conversion cache, the limits. */
export function createModelPool(config: Config, registry = new Registry(config), hooks: Pick<PoolOptions, "onConvertProgress" | "onEvent"> = {}): ModelPool {
  return new ModelPool(registry, {
    ...config,
    ...hooks,
    runtime: () => getRuntime(runtimeOptionsFor(config)),
    conversions: new ConversionCache(config.cacheDir),
    libuvReserve: poolThreadReserve(),
  });
}
