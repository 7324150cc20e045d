import type { TokenLogprob } from "../../engine/types.js";

/** Chat's `logprobs` object: one entry per token with its alternatives. */
export function chatLogprobs(tokens: TokenLogprob[]) {
  return {
    content: tokens.map((t) => ({
      token: t.text,
      logprob: t.logprob,
      bytes: t.bytes,
      top_logprobs: t.top.map((a) => ({ token: a.text, logprob: a.logprob, bytes: a.bytes })),
    })),
    refusal: null,
  };
}

/** Legacy completions' `logprobs` object; offsets count characters from `startOffset` (the echoed prompt's length, if any). */
export function completionLogprobs(tokens: TokenLogprob[], startOffset: number) {
  const text_offset: number[] = [];
  let offset = startOffset;
  for (const t of tokens) {
    text_offset.push(offset);
    offset += t.text.length;
  }
  return {
    tokens: tokens.map((t) => t.text),
    token_logprobs: tokens.map((t) => t.logprob),
    top_logprobs: tokens.map((t) => Object.fromEntries(t.top.map((a) => [a.text, a.logprob]))),
    text_offset,
  };
}
