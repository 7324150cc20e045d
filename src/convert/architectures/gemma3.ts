import { ConvertError } from "../errors.js";
import { f32 } from "./decoder.js";
import { GEMMA_LAYER, gemmaConverter, positive, type Raw, readRope, ropeMetadata } from "./gemma.js";
import { QK_NORMS } from "./llama-layers.js";

/**
 * The local (sliding) and global RoPE settings: transformers 4.x writes rope_theta, rope_scaling
 * (global only) and rope_local_base_freq; 5.x writes rope_parameters per layer type.
 */
function gemma3Rope(raw: Raw, configPath: string) {
  const params = (raw.rope_parameters ?? raw.rope_scaling) as Raw | null | undefined;
  const perType = params && typeof params === "object" && ("full_attention" in params || "sliding_attention" in params);
  const globalTheta = positive(raw, "rope_theta", 1_000_000, configPath);
  const localTheta = positive(raw, "rope_local_base_freq", 10_000, configPath);
  const global = readRope(perType ? params?.full_attention : params, globalTheta, configPath, "Gemma 3 global-layer");
  const local = perType ? readRope(params?.sliding_attention, localTheta, configPath, "Gemma 3 sliding-layer") : { theta: localTheta };
  // llama.cpp's gemma3 graph scales only the global layers' RoPE.
  if (local.linearFactor !== undefined) throw new ConvertError(configPath, "Gemma 3 rope scaling on sliding-window layers is not supported by llama.cpp");
  return { global, local };
}

/** Gemma 3 text: q/k RMSNorm per head, local RoPE base on sliding layers, no attention soft-cap. */
export const gemma3Converter = gemmaConverter({
  ggufArchitecture: "gemma3",
  hfArchitectures: ["Gemma3ForCausalLM"],
  layer: [...GEMMA_LAYER, ...QK_NORMS],
  layersScaledByHiddenPerHead: 62,
  // q is RMS-normalised before RoPE, so the correction goes on q_norm's weight, not on q_proj.
  queryScaleTensor: "attn_q_norm.weight",
  defaultSlidingPeriod: 6,
  extraMetadata(raw, _d, configPath) {
    if (raw.attn_logit_softcapping !== undefined && raw.attn_logit_softcapping !== null) {
      throw new ConvertError(configPath, "Gemma 3 with attn_logit_softcapping is not supported (llama.cpp's gemma3 graph does not soft-cap attention)");
    }
    const { global, local } = gemma3Rope(raw, configPath);
    const m = new Map([...ropeMetadata("gemma3", global), ["gemma3.rope.freq_base_swa", f32(local.theta)]]);
    if (raw.final_logit_softcapping !== undefined && raw.final_logit_softcapping !== null) {
      m.set("gemma3.final_logit_softcapping", f32(positive(raw, "final_logit_softcapping", 30, configPath)));
    }
    return m;
  },
});
