import { createHash } from "node:crypto";
import { statSync } from "node:fs";
import type { ModelSpec } from "../../discovery/types.js";
import { detectReasoning } from "../../engine/chat-format/detect.js";
import type { LoadedModelInfo } from "../../engine/model-pool.js";
import { cachedInspection, inspectModel } from "../../registry/inspect.js";

/** Ollama's `details` object from what discovery read. */
function details(m: ModelSpec) {
  return {
    parent_model: "",
    format: m.format,
    family: m.architecture ?? "",
    families: m.architecture ? [m.architecture] : null,
    parameter_size: m.parameters ? humanCount(m.parameters) : "",
    quantization_level: m.quantization?.toUpperCase() ?? "",
  };
}

/** 7_615_616_512 → "7.6B", 292_608 → "292.6K" (Ollama shows sizes this way). */
function humanCount(n: number): string {
  for (const [unit, size] of [["T", 1e12], ["B", 1e9], ["M", 1e6], ["K", 1e3]] as const) {
    if (n >= size) return `${Number((n / size).toFixed(1))}${unit}`;
  }
  return String(n);
}

/**
 * Ollama's digest is the sha256 of the model's manifest. Models from Ollama's store carry it;
 * for the others it is the sha256 of name, size and modification time: it changes when the file
 * does, without reading gigabytes to list models.
 */
function digestOf(m: ModelSpec): string {
  return m.digest ?? createHash("sha256").update(`${m.name}\0${m.sizeBytes}\0${modifiedAt(m).getTime()}`).digest("hex");
}

/** What discovery recorded, else the model file's own modification time. */
function modifiedAt(m: ModelSpec): Date {
  if (m.modifiedAt) return m.modifiedAt;
  try {
    return statSync(m.files[0]!).mtime;
  } catch {
    return new Date(0);
  }
}

export function tagJson(m: ModelSpec) {
  return { name: m.name, model: m.name, modified_at: modifiedAt(m).toISOString(), size: m.sizeBytes, digest: digestOf(m), details: details(m) };
}

/** How Ollama says "never unloads": a time far beyond any client's horizon. */
const FOREVER = "2318-11-26T00:00:00.000Z";

export function runningJson(m: ModelSpec, info: LoadedModelInfo) {
  const expires = info.expiresAt !== null ? new Date(info.expiresAt).toISOString() : info.keepAliveMs < 0 ? FOREVER : new Date(Date.now() + info.keepAliveMs).toISOString();
  return { ...tagJson(m), size: info.memoryBytes, expires_at: expires, size_vram: 0, context_length: info.contextSize };
}

/**
 * Ollama's capability names. Every generative model takes tools (its template's own syntax, or the
 * generic JSON fallback); thinking is what the template shows (a vocabulary with think tokens is
 * only known once loaded).
 */
function capabilitiesOf(m: ModelSpec, template: string | undefined): string[] {
  if (m.capabilities.includes("embedding")) return ["embedding"];
  const caps = ["completion", "tools"];
  if (detectReasoning(template, false) !== "none") caps.push("thinking");
  return caps;
}

/**
 * /api/show: the model's own metadata (GGUF key/values, or the HF config for a SafeTensors
 * folder; long arrays such as the vocabulary summarised, with or without `verbose`), its chat
 * template (Jinja, as the file holds it; Ollama's are Go templates) and capabilities. Answered
 * from the bounded report cached per file identity; `verbose` re-reads the file.
 */
export function showJson(m: ModelSpec, verbose = false) {
  const report = verbose ? inspectModel(m) : cachedInspection(m);
  return {
    license: "",
    modelfile: `# Shimmy serves this model from disk as it is\nFROM ${m.files[0] ?? ""}\n`,
    parameters: "",
    template: report.chatTemplate ?? "",
    details: details(m),
    model_info: report.metadata,
    capabilities: capabilitiesOf(m, report.chatTemplate),
    modified_at: modifiedAt(m).toISOString(),
  };
}
