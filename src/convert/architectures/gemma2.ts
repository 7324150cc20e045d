import { ConvertError } from "../errors.js";
import { f32 } from "./decoder.js";
import { GEMMA_LAYER, gemmaConverter, positive, readRope, ropeMetadata } from "./gemma.js";

/**
 * Gemma 2: alternating sliding-window / global layers (sliding first), attention-score and final
 * logit soft-capping. llama.cpp's gemma2 graph always applies both caps, so both are written.
 */
export const gemma2Converter = gemmaConverter({
  ggufArchitecture: "gemma2",
  hfArchitectures: ["Gemma2ForCausalLM"],
  layer: GEMMA_LAYER,
  layersScaledByHiddenPerHead: 46,
  queryScaleTensor: "attn_q.weight",
  defaultSlidingPeriod: 2,
  extraMetadata(raw, _d, configPath) {
    for (const key of ["attn_logit_softcapping", "final_logit_softcapping"]) {
      if (raw[key] === null) throw new ConvertError(configPath, `Gemma 2 with "${key}": null is not supported (llama.cpp's gemma2 graph always soft-caps)`);
    }
    const rope = readRope(raw.rope_parameters ?? raw.rope_scaling, positive(raw, "rope_theta", 10000, configPath), configPath, "Gemma 2");
    return new Map([
      ["gemma2.attn_logit_softcapping", f32(positive(raw, "attn_logit_softcapping", 50, configPath))],
      ["gemma2.final_logit_softcapping", f32(positive(raw, "final_logit_softcapping", 30, configPath))],
      ...ropeMetadata("gemma2", rope),
    ]);
  },
});
