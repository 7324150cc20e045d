import type { HfConfig } from "../../formats/hf-folder.js";
import type { GgufWriteValue } from "../../formats/gguf-writer.js";
import type { SafetensorsTensor } from "../../formats/safetensors.js";

/** One GGUF tensor to write: where its values come from and how they are transformed. */
export interface TensorPlan {
  /** GGUF name, e.g. blk.0.attn_q.weight. */
  name: string;
  /** HF (NumPy-order) shape of the result; GGUF dims are its reverse. */
  shape: number[];
  /** Source tensors, or none for tensors computed from the config (rope factors). */
  sources: SafetensorsTensor[];
  /**
   * Produces the float32 values in HF order from the decoded sources; absent means the one
   * source is written as it is (which allows conversions without a float32 round trip).
   */
  values?: (sources: Float32Array[]) => Float32Array;
  /** 1-D tensors (norms, biases, rope factors) stay F32 whatever the output type, as in llama.cpp. */
  keepF32: boolean;
}

export interface ArchitectureConverter {
  /** HF `architectures[0]` values this converter handles. */
  readonly hfArchitectures: readonly string[];
  /** GGUF `general.architecture`. */
  readonly ggufArchitecture: string;
  /** `<arch>.*` metadata from config.json. */
  metadata(config: HfConfig, configPath: string): Map<string, GgufWriteValue>;
  /** Every tensor to write, validated against the config (missing, extra, wrong shape → ConvertError). */
  plan(config: HfConfig, tensors: ReadonlyMap<string, SafetensorsTensor>, configPath: string): TensorPlan[];
}
