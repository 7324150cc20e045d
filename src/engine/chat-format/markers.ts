/** Helpers for finding markers in streamed text without holding back more than a marker prefix. */

export const THINK_OPEN = "<think>";
export const THINK_CLOSE = "</think>";

/** Length of the longest suffix of `text` that is a proper prefix of `marker` (text that may become it). */
export function partialMarkerLength(text: string, marker: string): number {
  const max = Math.min(text.length, marker.length - 1);
  for (let n = max; n > 0; n--) {
    if (text.endsWith(marker.slice(0, n))) return n;
  }
  return 0;
}

const WHITESPACE = /\s/;

export function isWhitespace(ch: string): boolean {
  return WHITESPACE.test(ch);
}

/** Index just past the leading whitespace of `text` from `from`. */
export function skipWhitespace(text: string, from = 0): number {
  let i = from;
  while (i < text.length && isWhitespace(text[i]!)) i++;
  return i;
}

/** Start of the trailing whitespace run ending at `end`. */
export function trailingWhitespaceStart(text: string, end = text.length): number {
  let i = end;
  while (i > 0 && isWhitespace(text[i - 1]!)) i--;
  return i;
}

/**
 * Where text that is certainly not part of `marker` (or the whitespace before it) ends: the rest
 * may still turn out to be a separator plus the marker, so the caller holds it back.
 */
export function safeTextEnd(text: string, marker: string): number {
  return trailingWhitespaceStart(text, text.length - partialMarkerLength(text, marker));
}
