import { join } from "node:path";
import { type Config, type ConfigOverrides, loadConfig } from "../../src/config/config.js";
import { type RunningServer, startServer } from "../../src/server/server.js";

/**
 * An environment whose every default model location (HF cache, Ollama store, LM Studio, the
 * verdict cache) lies under `home`, so this machine's own models cannot show up.
 */
export function emptyHomeEnv(home: string): NodeJS.ProcessEnv {
  return { HOME: home, HF_HOME: join(home, "hf"), HF_HUB_CACHE: join(home, "hf", "hub"), OLLAMA_MODELS: join(home, "ollama"), SHIMMY_CACHE_DIR: join(home, "cache") };
}

/** A real server with default locations on (demo included) but nothing of this machine's; 1 thread, 1 slot. */
export function startEmptyHomeServer(home: string, overrides: ConfigOverrides = {}): Promise<RunningServer> {
  const config: Config = loadConfig({ threads: 1, gpu: false, port: 0, parallel: 1, ...overrides }, emptyHomeEnv(home));
  return startServer(config, "test");
}
