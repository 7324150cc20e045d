import type { LlamaModel, Token } from "node-llama-cpp";

/** Texts up to this size are tokenized without a bound first: tokenizing them costs less than the bound. */
const BOUND_FROM_BYTES = 64 * 1024;

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * A lower bound on a text's token count, found without tokenizing: every token stands for at most
 * `longest` bytes of the text (its vocabulary entry's UTF-8 length bounds the bytes it decodes to),
 * so a text of B bytes needs at least B / longest tokens. The only text llama.cpp drops without a
 * token is whitespace beside a special token marked lstrip/rstrip (phi-3's, some embedding
 * models'); that whitespace is left out of B. Tokenizing is a synchronous native call that grows
 * with the text (and with the square of the special tokens in it): a prompt the bound proves too
 * long for the context is refused without it, which keeps the event loop free.
 */
export class PromptBound {
  private vocab: { longest: number; stripped?: RegExp } | undefined;

  constructor(private readonly model: LlamaModel) {}

  /** At least this many tokens; 0 when the text is small or the vocabulary gives no bound. */
  minTokens(text: string): number {
    if (text.length < BOUND_FROM_BYTES / 4 && Buffer.byteLength(text) < BOUND_FROM_BYTES) return 0;
    const { longest, stripped } = (this.vocab ??= this.readVocabulary());
    if (longest === 0) return 0;
    let bytes = Buffer.byteLength(text);
    if (stripped) for (const m of text.matchAll(stripped)) bytes -= m[0].length;
    return Math.floor(bytes / longest);
  }

  /**
   * The start of a text that still holds at least `tokens` tokens (every token covers at most
   * `longest` bytes, so at least one per `longest` characters): what a truncated input needs
   * tokenized, whatever its length.
   */
  prefixHolding(text: string, tokens: number): string {
    if (this.minTokens(text) === 0) return text;
    const { longest } = (this.vocab ??= this.readVocabulary());
    return text.slice(0, (tokens + 64) * longest);
  }

  /** One walk over the vocabulary (on the first large prompt): its longest entry, and the strip-marked special tokens. */
  private readVocabulary(): { longest: number; stripped?: RegExp } {
    const size = this.model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length;
    // WordPiece and Unigram vocabularies can map a whole word to one unknown token: no byte bound.
    if (typeof size !== "number" || (this.model.vocabularyType !== "spm" && this.model.vocabularyType !== "bpe")) return { longest: 0 };
    const native = (this.model as unknown as { _model?: { getTokenString?: (t: number) => string | undefined } })._model;
    let longest = 0;
    const before: string[] = [];
    const after: string[] = [];
    for (let id = 0; id < size; id++) {
      const token = id as Token;
      const text = native?.getTokenString?.(id) ?? this.model.detokenize([token], true);
      longest = Math.max(longest, Buffer.byteLength(text));
      const attributes = this.model.getTokenAttributes(token);
      if (attributes.lstrip && text) before.push(escapeRegExp(text));
      if (attributes.rstrip && text) after.push(escapeRegExp(text));
    }
    // isspace() in the C locale: what llama.cpp strips.
    const ws = "[ \\t\\n\\v\\f\\r]+";
    const parts = [...(before.length ? [`${ws}(?=${before.join("|")})`] : []), ...(after.length ? [`(?<=${after.join("|")})${ws}`] : [])];
    return { longest, stripped: parts.length ? new RegExp(parts.join("|"), "g") : undefined };
  }
}
