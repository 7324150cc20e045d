import { LLAMA_FILE_TYPES } from "./ggml-types.js";
import { type GgufFile, GgufSkippedArray, metaNumber, metaString } from "./gguf.js";
import { type HfFolder, readHfFolder } from "./hf-folder.js";
import { readSafetensors } from "./safetensors.js";

export type ModelKind = "generative" | "embedding" | "adapter" | "projector" | "vocab-only";

/** What a model is, derived from its file contents (never from its file name). */
export interface ModelSummary {
  format: "gguf" | "safetensors";
  kind: ModelKind;
  architecture?: string;
  /** general.name, or the HF model_type. */
  displayName?: string;
  parameters: number;
  quantization?: string;
  contextLength?: number;
  vocabSize?: number;
  embeddingLength?: number;
  layers?: number;
  hasChatTemplate: boolean;
  /** For LoRA adapters: what the file says its base is. */
  adapter?: { type: string; baseModelName?: string; baseModelRepo?: string; alpha?: number };
  /** Identity of this model for pairing adapters (general.name / repo_url). */
  baseIdentity?: { name?: string; repo?: string };
}

// Encoder-only architectures llama.cpp runs as embedding models.
const EMBEDDING_ARCHITECTURES = new Set(["bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "t5encoder", "neo-bert", "modern-bert"]);

function dominantTensorType(files: readonly GgufFile[]): string | undefined {
  const bytesByType = new Map<string, number>();
  for (const f of files) for (const t of f.tensors) bytesByType.set(t.typeName, (bytesByType.get(t.typeName) ?? 0) + t.bytes);
  let best: [string, number] | undefined;
  for (const e of bytesByType) if (!best || e[1] > best[1]) best = e;
  return best?.[0];
}

/** Summarises a GGUF model from its parsed parts (the first part carries the metadata). */
export function summarizeGguf(parts: readonly GgufFile[]): ModelSummary {
  const first = parts[0]!;
  const arch = metaString(first, "general.architecture");
  const type = metaString(first, "general.type");
  const tensorCount = parts.reduce((n, p) => n + p.tensors.length, 0);
  let kind: ModelKind = "generative";
  if (type === "adapter") kind = "adapter";
  else if (type === "mmproj" || arch === "clip") kind = "projector";
  else if (tensorCount === 0) kind = "vocab-only";
  else if ((arch && EMBEDDING_ARCHITECTURES.has(arch)) || (arch !== undefined && (metaNumber(first, `${arch}.pooling_type`) ?? 0) > 0)) {
    kind = "embedding";
  }
  const fileType = metaNumber(first, "general.file_type");
  const tokens = first.metadata.get("tokenizer.ggml.tokens");
  const summary: ModelSummary = {
    format: "gguf",
    kind,
    architecture: arch,
    displayName: metaString(first, "general.name"),
    parameters: parts.reduce((n, p) => n + p.tensors.reduce((m, t) => m + t.elements, 0), 0),
    quantization: (fileType !== undefined ? LLAMA_FILE_TYPES.get(fileType) : undefined) ?? dominantTensorType(parts),
    contextLength: arch ? metaNumber(first, `${arch}.context_length`) : undefined,
    vocabSize: (arch ? metaNumber(first, `${arch}.vocab_size`) : undefined) ?? (Array.isArray(tokens) || tokens instanceof GgufSkippedArray ? tokens.length : undefined),
    embeddingLength: arch ? metaNumber(first, `${arch}.embedding_length`) : undefined,
    layers: arch ? metaNumber(first, `${arch}.block_count`) : undefined,
    hasChatTemplate: typeof first.metadata.get("tokenizer.chat_template") === "string",
    baseIdentity: { name: metaString(first, "general.name"), repo: metaString(first, "general.repo_url") },
  };
  if (kind === "adapter") {
    summary.adapter = {
      type: metaString(first, "adapter.type") ?? "unknown",
      baseModelName: metaString(first, "general.base_model.0.name"),
      baseModelRepo: metaString(first, "general.base_model.0.repo_url"),
      alpha: metaNumber(first, "adapter.lora.alpha"),
    };
  }
  return summary;
}

/** Summarises an HF SafeTensors folder from config.json and the weight headers (no tensor data read). */
export function summarizeHfFolder(dirOrFolder: string | HfFolder): ModelSummary {
  const folder = typeof dirOrFolder === "string" ? readHfFolder(dirOrFolder) : dirOrFolder;
  const { config } = folder;
  const headers = folder.weightFiles.map((f) => readSafetensors(f));
  const bytesByDtype = new Map<string, number>();
  let parameters = 0;
  for (const h of headers) {
    for (const t of h.tensors) {
      parameters += t.shape.reduce((a, b) => a * b, 1);
      bytesByDtype.set(t.dtype, (bytesByDtype.get(t.dtype) ?? 0) + (t.end - t.start));
    }
  }
  let dominant: string | undefined;
  for (const [d, b] of bytesByDtype) if (dominant === undefined || b > bytesByDtype.get(dominant)!) dominant = d;
  const arch = config.architectures[0];
  const generative = !arch || /For(CausalLM|ConditionalGeneration)$/.test(arch);
  return {
    format: "safetensors",
    kind: generative ? "generative" : "embedding",
    architecture: arch,
    displayName: config.modelType,
    parameters,
    quantization: dominant ?? config.torchDtype?.toUpperCase(),
    contextLength: config.maxPositionEmbeddings,
    vocabSize: config.vocabSize,
    embeddingLength: config.hiddenSize,
    layers: config.numLayers,
    hasChatTemplate: folder.tokenizerConfig?.chatTemplate !== undefined,
    baseIdentity: { name: typeof config.raw._name_or_path === "string" ? config.raw._name_or_path : undefined },
  };
}
