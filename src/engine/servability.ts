import { converterFor, SUPPORTED_ARCHITECTURES } from "../convert/architectures/index.js";
import type { ModelSpec } from "../discovery/types.js";

/** Whether the engine can run a model, and if not, why — one answer for the API, the pool and the CLI. */
export function unservableReason(spec: ModelSpec): string | undefined {
  if (spec.error) return spec.error;
  if (!spec.capabilities.includes("completion")) return spec.note ?? `it is a ${spec.summary?.kind ?? "non-generative"} model`;
  if (spec.format === "safetensors" && !converterFor(spec.architecture)) {
    return `architecture ${spec.architecture ?? "(unknown)"} cannot be converted yet; supported: ${SUPPORTED_ARCHITECTURES.join(", ")}`;
  }
  return undefined;
}

export function servableModels(specs: readonly ModelSpec[]): ModelSpec[] {
  return specs.filter((s) => !unservableReason(s));
}
