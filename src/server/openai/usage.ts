import { tokenRates } from "../../engine/rates.js";
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
  const { promptPerSecond, decodePerSecond } = tokenRates(u, t);
  return {
    queue_ms: round(t.queueMs),
    prompt_n: u.promptTokens - u.cachedTokens,
    cache_n: u.cachedTokens,
    prompt_ms: round(t.promptMs),
    prompt_per_second: promptPerSecond === null ? null : round(promptPerSecond),
    predicted_n: u.completionTokens,
    predicted_ms: round(t.generationMs),
    predicted_per_second: decodePerSecond === null ? null : round(decodePerSecond),
  };
}

const round = (n: number): number => Math.round(n * 100) / 100;
