import type { Timings, Usage } from "./types.js";

/** Measured speeds of one generation in tokens per second; null where there is nothing to measure. */
export function tokenRates(u: Usage, t: Timings): { promptPerSecond: number | null; decodePerSecond: number | null } {
  return {
    promptPerSecond: t.promptMs > 0 ? ((u.promptTokens - u.cachedTokens) / t.promptMs) * 1000 : null,
    // The first token is sampled with the prompt, so the decode rate covers the tokens after it.
    decodePerSecond: t.generationMs > 0 && u.completionTokens > 1 ? ((u.completionTokens - 1) / t.generationMs) * 1000 : null,
  };
}
