import type { Token } from "node-llama-cpp";

/** How long a suffix is matched, longest first: a longer match predicts its continuation better. */
const LONGEST_NGRAM = 4;
/** A single repeated token predicts little (and matches almost everywhere): two at least. */
const SHORTEST_NGRAM = 2;

/**
 * Prompt-lookup drafting: the last few tokens of `history` + `last` are looked up, most recent
 * occurrence first, in what came before them (the prompt and the text generated so far), and the
 * tokens that followed that occurrence are the draft. Code edits, quoting answers and JSON that
 * repeats its keys continue text that is already there; nothing found costs nothing.
 */
export function promptLookupDraft(history: readonly Token[], last: Token, max: number): Token[] {
  // The sequence searched is history followed by last; `at(i)` reads it without copying.
  const length = history.length + 1;
  const at = (i: number): Token => (i < history.length ? history[i]! : last);
  for (let n = Math.min(LONGEST_NGRAM, length - 1); n >= SHORTEST_NGRAM; n--) {
    const start = length - n;
    // Occurrences ending before the suffix itself, latest first.
    for (let end = length - 1; end >= n; end--) {
      let i = 0;
      while (i < n && at(end - n + i) === at(start + i)) i++;
      if (i < n) continue;
      const draft: Token[] = [];
      for (let j = end; j < length && draft.length < max; j++) draft.push(at(j));
      return draft;
    }
  }
  return [];
}
