import { converterFor, SUPPORTED_ARCHITECTURES } from "../convert/architectures/index.js";
import type { ModelSpec } from "../discovery/types.js";

/** What a request asks of a model: text generation, or embeddings (which every servable model gives). */
export type ModelUse = "generate" | "embed";

/** A model that only embeds (an encoder, or a decoder whose file declares a pooling type): it never generates. */
export function isEmbeddingOnly(spec: ModelSpec): boolean {
  return spec.capabilities.includes("embedding") && !spec.capabilities.includes("completion");
}

/** Whether the engine can run a model for `use`, and if not, why — one answer for the API, the pool and the CLI. */
export function unservableReason(spec: ModelSpec, use: ModelUse = "generate"): string | undefined {
  if (spec.error) return spec.error;
  const embeddingOnly = isEmbeddingOnly(spec);
  if (!embeddingOnly && !spec.capabilities.includes("completion")) return spec.note ?? `it is a ${spec.summary?.kind ?? "non-generative"} model`;
  if (spec.format === "safetensors" && !converterFor(spec.architecture)) {
    return `architecture ${spec.architecture ?? "(unknown)"} cannot be converted yet; supported: ${SUPPORTED_ARCHITECTURES.join(", ")}`;
  }
  if (embeddingOnly && use === "generate") return "it is an embedding model: it serves /v1/embeddings and /api/embed, not text generation";
  return undefined;
}

/** Models that answer some request: generative ones, and embedding ones (for embeddings). */
export function servableModels(specs: readonly ModelSpec[]): ModelSpec[] {
  return specs.filter((s) => !unservableReason(s, "embed"));
}
