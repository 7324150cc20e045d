import type { HfConfig, HfFolder } from "../../formats/hf-folder.js";
import type { GgufWriteValue } from "../../formats/gguf-writer.js";
import type { SafetensorsTensor } from "../../formats/safetensors.js";

export interface Affine {
  shift: number;
  scale: number;
}

/** One GGUF tensor to write: where its values come from and how they are transformed. */
export interface TensorPlan {
  /** GGUF name, e.g. blk.0.attn_q.weight. */
  name: string;
  /** HF (NumPy-order) shape of the result; GGUF dims are its reverse. */
  shape: number[];
  /**
   * Source tensors, or none for tensors computed from the config (rope factors). Several are
   * stacked in order along the first dimension (MoE experts into one `*_exps` tensor).
   */
  sources: SafetensorsTensor[];
  /** Values computed from the config, for a tensor with no sources. */
  values?: () => Float32Array;
  /**
   * Attention heads whose rows are reordered from HF's rotate-half RoPE layout to llama.cpp's
   * interleaved one (llama q/k); the one source is otherwise written as it is.
   */
  permuteHeads?: number;
  /** Every value v written as (v + shift) × scale (Gemma's norms, stored as w for x·(1 + w); a query scale correction). */
  affine?: Affine;
  /** 1-D tensors (norms, biases, rope factors) stay F32 whatever the output type, as in llama.cpp. */
  keepF32: boolean;
}

export interface ArchitectureConverter {
  /** HF `architectures[0]` values this converter handles. */
  readonly hfArchitectures: readonly string[];
  /** GGUF `general.architecture`. */
  readonly ggufArchitecture: string;
  /**
   * Multimodal checkpoints: the language model's config (text_config with the family's defaults
   * for absent keys), which metadata, plan and the vocabulary then read instead of config.json's.
   */
  textConfig?(config: HfConfig, configPath: string): HfConfig;
  /** Checkpoint tensors left out on purpose (a vision tower), one line per group for the user. */
  skipped?(tensors: ReadonlyMap<string, SafetensorsTensor>): string[];
  /** `<arch>.*` metadata from config.json. */
  metadata(config: HfConfig, configPath: string): Map<string, GgufWriteValue>;
  /** Every tensor to write, validated against the config (missing, extra, wrong shape → ConvertError). */
  plan(config: HfConfig, tensors: ReadonlyMap<string, SafetensorsTensor>, configPath: string): TensorPlan[];
  /** `tokenizer.*` metadata, for a family whose tokenizer is not BPE (absent: convertTokenizer). */
  tokenizer?(folder: HfFolder, vocabSize: number): Map<string, GgufWriteValue>;
}
