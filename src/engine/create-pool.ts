import { join } from "node:path";
import type { Config } from "../config/config.js";
import { ConversionCache } from "../convert/cache.js";
import { Registry } from "../registry/registry.js";
import { ProbeGate, type ProbeGateOptions } from "./isolation/probe-gate.js";
import { getRuntime, runtimeOptionsFor } from "./llama.js";
import { ModelPool, type PoolOptions } from "./model-pool.js";
import { poolThreadReserve } from "./pool-reserve.js";
import { PromptCacheStore } from "./prompt-cache/store.js";
import { PromptWorker } from "./prompt-worker/prompt-worker.js";

/** Where probe verdicts are kept. */
export const verdictCachePath = (config: Pick<Config, "cacheDir">): string => join(config.cacheDir, "model-verdicts.json");

/** A ModelPool wired from the Config: the shared runtime, the conversion cache, the probe gate, the limits. */
export function createModelPool(
  config: Config,
  registry = new Registry(config),
  hooks: Pick<PoolOptions, "onConvertProgress" | "onEvent"> & Pick<ProbeGateOptions, "onProbe"> = {},
): ModelPool {
  return new ModelPool(registry, {
    ...config,
    onConvertProgress: hooks.onConvertProgress,
    onEvent: hooks.onEvent,
    gate: config.isolation
      ? new ProbeGate({ cachePath: verdictCachePath(config), runtime: runtimeOptionsFor(config), load: config, timeoutMs: config.probeTimeoutMs, onProbe: hooks.onProbe })
      : undefined,
    runtime: () => getRuntime(runtimeOptionsFor(config)),
    conversions: new ConversionCache(config.cacheDir),
    libuvReserve: poolThreadReserve(),
    promptWorker: new PromptWorker(runtimeOptionsFor(config)),
    promptStates: config.promptCache ? { store: new PromptCacheStore(config.promptCacheDir, config.promptCacheMaxBytes), minTokens: config.promptCacheMinTokens } : undefined,
  });
}
