import { tokenRates } from "../../engine/rates.js";
import type { DoneEvent, Timings, Usage } from "../../engine/types.js";

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
    // llama-server's names; present when the generation ran with speculative decoding.
    ...(t.drafted === undefined ? {} : { draft_n: t.drafted, draft_n_accepted: t.accepted ?? 0 }),
  };
}

const round = (n: number): number => Math.round(n * 100) / 100;

/** Usage over n choices, as OpenAI reports it: the prompt once, completion tokens summed. */
export function summedUsage(dones: DoneEvent[]): Usage {
  const first = dones[0]!.usage;
  return { promptTokens: first.promptTokens, cachedTokens: first.cachedTokens, completionTokens: dones.reduce((sum, d) => sum + d.usage.completionTokens, 0) };
}

/** Finish reasons on the wire: an aborted stream has nobody to read it, but say "stop". */
export const wireFinish = (d: DoneEvent): "stop" | "length" | "tool_calls" => (d.finishReason === "abort" ? "stop" : d.finishReason);
