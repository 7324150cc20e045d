import { InvalidGenerationError } from "../errors.js";

/** llama.cpp parses grammars on the calling (main) thread, recursing once per nested group. */
export const MAX_GRAMMAR_TEXT = 256 * 1024;
export const MAX_GRAMMAR_NESTING = 1000;

/** The deepest `(` nesting of GBNF text, outside string literals, character classes and comments. */
function nestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"' || c === "[") {
      const close = c === '"' ? '"' : "]";
      for (i++; i < text.length && text[i] !== close; i++) if (text[i] === "\\") i++;
    } else if (c === "#") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (c === "(") {
      deepest = Math.max(deepest, ++depth);
    } else if (c === ")") {
      depth--;
    }
  }
  return deepest;
}

/**
 * Refuses grammar text that would take llama.cpp's parser too long or too deep (a 60 KB raw
 * grammar nested 30,000 deep crashes it), before it is parsed.
 */
export function checkGrammarBounds(text: string, param: string): void {
  if (text.length > MAX_GRAMMAR_TEXT) throw new InvalidGenerationError(`the grammar is ${text.length} characters; Shimmy parses at most ${MAX_GRAMMAR_TEXT} (bound schema lengths and counts, or send a smaller grammar)`, param);
  const depth = nestingDepth(text);
  if (depth > MAX_GRAMMAR_NESTING) throw new InvalidGenerationError(`the grammar nests groups ${depth} deep; Shimmy allows at most ${MAX_GRAMMAR_NESTING}`, param);
}
