import type { Timings, Usage } from "../../engine/types.js";

export function usageJson(u: Usage) {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    prompt_tokens_details: { cached_tokens: u.cachedTokens },
  };
}

/** llama-server-style timings, measured: milliseconds and tokens per second. */
export function timingsJson(u: Usage, t: Timings) {
  const evaluated = u.promptTokens - u.cachedTokens;
  return {
    queue_ms: round(t.queueMs),
    prompt_n: evaluated,
    cache_n: u.cachedTokens,
    prompt_ms: round(t.promptMs),
    prompt_per_second: t.promptMs > 0 ? round((evaluated / t.promptMs) * 1000) : null,
    predicted_n: u.completionTokens,
    predicted_ms: round(t.generationMs),
    // The first token is sampled with the prompt, so the rate covers the tokens after it.
    predicted_per_second: t.generationMs > 0 && u.completionTokens > 1 ? round(((u.completionTokens - 1) / t.generationMs) * 1000) : null,
  };
}

const round = (n: number): number => Math.round(n * 100) / 100;
