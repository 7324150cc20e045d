import type { Timings, Usage } from "./types.js";

/** Measured speeds of one generation in tokens per second; null where there is nothing to measure. */
export function tokenRates(u: Usage, t: Timings): { promptPerSecond: number | null; decodePerSecond: number | null } {
  return {
    promptPerSecond: t.promptMs > 0 ? ((u.promptTokens - u.cachedTokens) / t.promptMs) * 1000 : null,
    // The first token is sampled with the prompt, so the decode rate covers the tokens after it.
    decodePerSecond: t.generationMs > 0 && u.completionTokens > 1 ? ((u.completionTokens - 1) / t.generationMs) * 1000 : null,
  };
}

/** The middle of repeated measurements (mean of the two middle values for an even count). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
