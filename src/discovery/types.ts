import type { ModelSummary } from "../formats/summary.js";

export type SourceName = "path" | "env" | "dir" | "hf-cache" | "ollama" | "lmstudio" | "demo";

/** Something a source found that may be a model; assembled into ModelSpecs after inspection. */
export interface Candidate {
  source: SourceName;
  kind: "gguf" | "hf-folder";
  /** The GGUF file (first part for split files) or the HF folder. */
  path: string;
  /** The name this source suggests, already in Shimmy's naming style. */
  nameHint: string;
  /** Prefix used when the hint collides with another source's name. */
  sourcePrefix: string;
  /** An adapter the source pairs explicitly (SHIMMY_LORA_GGUF, an Ollama adapter layer). */
  loraPath?: string;
  projectorPath?: string;
  /** Extra identifiers users may type (Ollama's long names, HF repo ids). */
  aliases?: string[];
  /** Ollama: sha256 of the manifest, as /api/tags reports it. */
  digest?: string;
  modifiedAt?: Date;
  /** Reached through a symlink: the real path, when also found, names the model. */
  viaSymlink?: boolean;
}

export interface SearchLocation {
  source: SourceName;
  path: string;
  exists: boolean;
  note?: string;
}

export type Capability = "completion" | "chat" | "embedding";

/** A model as the rest of Shimmy sees it. `error` set means listed but not servable. */
export interface ModelSpec {
  name: string;
  aliases: string[];
  format: "gguf" | "safetensors";
  /** GGUF parts in order, or the HF folder. */
  files: string[];
  source: SourceName;
  sizeBytes: number;
  architecture?: string;
  contextLength?: number;
  quantization?: string;
  parameters?: number;
  lora?: string;
  projector?: string;
  capabilities: Capability[];
  summary?: ModelSummary;
  digest?: string;
  modifiedAt?: Date;
  error?: string;
  /** Why a readable model is listed but not served (adapter without base, projector, …). */
  note?: string;
}

/** Compact debug notes: what was skipped and why (unreadable dirs and the like). */
export type NoteSink = (message: string) => void;
