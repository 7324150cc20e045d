import type { Token } from "node-llama-cpp";
import type { NativeSamplerConfig } from "./native-context.js";
import type { SamplingOptions } from "./types.js";

/** Penalties look back this many tokens, like llama-server's repeat_last_n default. */
export const PENALTY_WINDOW = 64;

/**
 * A request's sampling options as one native sampler config, applied once per request: the
 * sampler then remembers each token it samples (the penalty window slides natively).
 *
 * OpenAI semantics: no top-k unless asked (the field is left out, so no top-k sampler; a 0 is
 * passed on and means the whole vocabulary, as in node-llama-cpp), top_p 1 and min_p 0 unless
 * asked. An unset seed is random per request. A -100 logit bias bans the token — also an
 * end-of-generation token (node-llama-cpp's TokenBias silently skipped those).
 */
export function nativeSamplerConfig(s: SamplingOptions, promptTokens: readonly Token[]): NativeSamplerConfig {
  const config: NativeSamplerConfig = {
    temperature: s.temperature,
    topP: s.topP ?? 1,
    minP: s.minP ?? 0,
    seed: s.seed === undefined ? Math.floor(Math.random() * 0xffffffff) : Math.max(0, Math.floor(s.seed)),
  };
  if (s.topK !== undefined) config.topK = s.topK;
  if (s.presencePenalty || s.frequencyPenalty || (s.repeatPenalty !== undefined && s.repeatPenalty !== 1)) {
    config.repeatPenalty = s.repeatPenalty ?? 1;
    config.repeatPenaltyMaxTokens = PENALTY_WINDOW;
    config.repeatPenaltyTokens = Uint32Array.from(promptTokens.slice(-PENALTY_WINDOW));
    if (s.presencePenalty) config.repeatPenaltyPresencePenalty = s.presencePenalty;
    if (s.frequencyPenalty) config.repeatPenaltyFrequencyPenalty = s.frequencyPenalty;
  }
  if (s.logitBias && s.logitBias.size > 0) {
    config.tokenBiasKeys = Uint32Array.from(s.logitBias.keys());
    config.tokenBiasValues = Float32Array.from(s.logitBias.values(), (bias) => (bias <= -100 ? Number.NEGATIVE_INFINITY : bias));
  }
  return config;
}
