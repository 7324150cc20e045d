import type { ModelSpec } from "../discovery/types.js";
import type { Registry } from "./registry.js";

/**
 * A model by an Ollama-style name, servable or not: names are `model:tag` with `latest` implied,
 * so "llama3.2" finds "llama3.2:latest" and "stories260k:latest" finds "stories260k".
 */
export function findByOllamaName(registry: Pick<Registry, "find">, name: string): ModelSpec | undefined {
  const alternative = name.endsWith(":latest") ? name.slice(0, -":latest".length) : name.includes(":") ? undefined : `${name}:latest`;
  return registry.find(name) ?? (alternative === undefined ? undefined : registry.find(alternative));
}
