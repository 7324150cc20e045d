import type { ModelSpec } from "../discovery/types.js";

/**
 * The documented, stable JSON shape of a model in `discover --json` and `list --json`
 * (docs/cli-json.md). Fields are added, never renamed.
 */
export function modelToJson(m: ModelSpec) {
  return {
    name: m.name,
    format: m.format,
    kind: m.summary?.kind ?? null,
    architecture: m.architecture ?? null,
    parameters: m.parameters ?? null,
    quantization: m.quantization ?? null,
    size_bytes: m.sizeBytes,
    context_length: m.contextLength ?? null,
    chat_template: m.summary?.hasChatTemplate ?? false,
    capabilities: m.capabilities,
    source: m.source,
    path: m.files[0] ?? null,
    files: m.files,
    lora: m.lora ?? null,
    projector: m.projector ?? null,
    aliases: m.aliases,
    usable: !m.error && m.capabilities.length > 0,
    error: m.error ?? null,
    note: m.note ?? null,
  };
}
