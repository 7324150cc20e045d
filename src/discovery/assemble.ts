import { createHash } from "node:crypto";
import { dirname } from "node:path";
import { converterFor, SUPPORTED_ARCHITECTURES } from "../convert/architectures/index.js";
import { readGguf } from "../formats/gguf.js";
import { summarizeGguf } from "../formats/summary.js";
import type { InspectedCandidate } from "./inspect-candidate.js";
import type { Capability, ModelSpec } from "./types.js";

/** An HF folder is served through the converter: one whose architecture it cannot convert serves nothing. */
const unconvertible = (item: InspectedCandidate): boolean => item.candidate.kind === "hf-folder" && !converterFor(item.summary?.architecture);

function capabilitiesOf(item: InspectedCandidate): Capability[] {
  if (item.error || !item.summary || unconvertible(item)) return [];
  if (item.summary.kind === "generative") return ["completion", "chat"];
  if (item.summary.kind === "embedding") return ["embedding"];
  return [];
}

function toSpec(item: InspectedCandidate): ModelSpec {
  const { candidate, summary } = item;
  return {
    name: candidate.nameHint,
    aliases: [...new Set([candidate.path, ...(candidate.aliases ?? [])])],
    format: candidate.kind === "hf-folder" ? "safetensors" : "gguf",
    files: item.files,
    source: candidate.source,
    sizeBytes: item.sizeBytes,
    architecture: summary?.architecture,
    contextLength: summary?.contextLength,
    quantization: summary?.quantization,
    parameters: summary?.parameters,
    capabilities: capabilitiesOf(item),
    summary,
    digest: candidate.digest,
    modifiedAt: candidate.modifiedAt,
    projector: candidate.projectorPath,
    error: item.error,
    note: noteFor(item),
  };
}

function noteFor(item: InspectedCandidate): string | undefined {
  if (item.error || !item.summary) return undefined;
  if (unconvertible(item)) return `architecture ${item.summary.architecture ?? "(unknown)"} cannot be converted yet; supported: ${SUPPORTED_ARCHITECTURES.join(", ")}`;
  switch (item.summary.kind) {
    case "projector": return "multimodal projector: used by a vision model, not served on its own";
    case "vocab-only": return "vocabulary-only file: has no weights";
    default: return undefined;
  }
}

/** Checks an explicitly paired adapter (SHIMMY_LORA_GGUF, Ollama adapter layer) is a readable LoRA. */
function explicitLora(spec: ModelSpec, loraPath: string): void {
  try {
    const s = summarizeGguf([readGguf(loraPath, { maxArrayLength: 64 })]);
    if (s.kind !== "adapter") {
      spec.error = `${loraPath} is not a LoRA adapter (general.type is not "adapter")`;
      spec.capabilities = [];
      return;
    }
    if (s.architecture && spec.architecture && s.architecture !== spec.architecture) {
      spec.error = `adapter ${loraPath} is for ${s.architecture}, base model is ${spec.architecture}`;
      spec.capabilities = [];
      return;
    }
    spec.lora = loraPath;
  } catch (e) {
    spec.error = `adapter: ${(e as Error).message}`;
    spec.capabilities = [];
  }
}

const same = (a?: string, b?: string): boolean => !!a && !!b && a.toLowerCase() === b.toLowerCase();

/**
 * Pairs a LoRA adapter with its base: same architecture, then what the adapter's metadata says
 * its base is (general.base_model.*), then the same folder. Ambiguity leaves it unpaired.
 */
function findBase(adapter: ModelSpec, bases: ModelSpec[]): ModelSpec | undefined {
  const a = adapter.summary?.adapter;
  const sameArch = bases.filter((b) => b.architecture === adapter.architecture);
  const byMeta = sameArch.filter(
    (b) => same(a?.baseModelName, b.summary?.baseIdentity?.name) || same(a?.baseModelRepo, b.summary?.baseIdentity?.repo),
  );
  const folder = dirname(adapter.files[0]!);
  const pick = (list: ModelSpec[]): ModelSpec | undefined => {
    if (list.length === 1) return list[0];
    const here = list.filter((b) => dirname(b.files[0]!) === folder);
    return here.length === 1 ? here[0] : undefined;
  };
  if (byMeta.length > 0) return pick(byMeta);
  // No usable base metadata: only the folder can tell.
  if (a?.baseModelName || a?.baseModelRepo) return undefined;
  const here = sameArch.filter((b) => dirname(b.files[0]!) === folder);
  return here.length === 1 ? here[0] : undefined;
}

function shortHash(s: string): string {
  return createHash("sha1").update(s).digest("hex").slice(0, 6);
}

/**
 * Turns inspected candidates (in priority order) into the final model list: one entry per
 * physical file, unique names, adapters paired with their bases.
 */
export function assemble(items: InspectedCandidate[]): ModelSpec[] {
  const byIdentity = new Map<string, ModelSpec>();
  const specs: ModelSpec[] = [];
  const origin = new Map<ModelSpec, { prefix: string; path: string }>();
  for (const item of items) {
    // The same weights with a different adapter (an Ollama tag built FROM another) are another model.
    const key = `${item.identity}|${item.candidate.loraPath ?? ""}`;
    const existing = byIdentity.get(key);
    if (existing) {
      // The same file reached twice (symlink, HF blob, several search dirs): one model, more aliases.
      for (const alias of [item.candidate.path, item.candidate.nameHint, ...(item.candidate.aliases ?? [])]) {
        if (!existing.aliases.includes(alias) && alias !== existing.name) existing.aliases.push(alias);
      }
      continue;
    }
    const spec = toSpec(item);
    if (item.candidate.loraPath && !spec.error) explicitLora(spec, item.candidate.loraPath);
    byIdentity.set(key, spec);
    origin.set(spec, { prefix: item.candidate.sourcePrefix, path: item.candidate.path });
    specs.push(spec);
  }

  const bases = specs.filter((s) => s.summary?.kind === "generative" && !s.error && s.format === "gguf");
  for (const spec of specs) {
    if (spec.summary?.kind !== "adapter" || spec.error) continue;
    const base = findBase(spec, bases);
    if (!base) {
      spec.note = `LoRA adapter with no unambiguous base model (architecture ${spec.architecture ?? "unknown"}${
        spec.summary.adapter?.baseModelName ? `, base "${spec.summary.adapter.baseModelName}"` : ""
      })`;
      continue;
    }
    // Served as its own model: the base's weights with this adapter applied.
    spec.lora = spec.files[0];
    spec.files = base.files;
    spec.capabilities = base.capabilities;
    spec.contextLength = base.contextLength;
    spec.quantization = base.quantization;
    spec.aliases.push(`${base.name}+${spec.name}`);
  }

  // Collisions: the later source gets its prefix, then a stable hash of its path.
  const taken = new Set<string>();
  for (const spec of specs) {
    const { prefix, path } = origin.get(spec)!;
    let name = spec.name;
    if (taken.has(name.toLowerCase())) name = `${prefix}/${spec.name}`;
    if (taken.has(name.toLowerCase())) name = `${spec.name}@${shortHash(path)}`;
    spec.name = name;
    taken.add(name.toLowerCase());
  }
  return specs;
}
