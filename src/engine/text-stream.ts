import type { LlamaModel, Token } from "node-llama-cpp";

/**
 * Turns generated tokens into text as they arrive. Holds back tokens whose bytes end in an
 * incomplete UTF-8 sequence, and detokenizes with the preceding tokens as context so that
 * SentencePiece's leading space of the first piece is kept.
 */
export class TokenTextDecoder {
  private pending: Token[] = [];
  private context: Token[];

  constructor(
    private readonly model: LlamaModel,
    contextTokens: readonly Token[],
    private readonly specialTokens = false,
  ) {
    this.context = contextTokens.slice(-4);
  }

  /** Text that is complete after this token ("" while a multi-byte character is unfinished). */
  push(token: Token): string {
    this.pending.push(token);
    const text = this.model.detokenize(this.pending, this.specialTokens, this.context);
    // U+FFFD at the end means the bytes so far stop mid-character; 4 tokens is the longest a
    // UTF-8 sequence can be spread over with byte-fallback tokens.
    if (text.endsWith("\uFFFD") && this.pending.length < 4) return "";
    this.context = [...this.context, ...this.pending].slice(-4);
    this.pending = [];
    return text;
  }

  /** Whatever is still held back, at the end of generation. */
  flush(): string {
    if (this.pending.length === 0) return "";
    const text = this.model.detokenize(this.pending, this.specialTokens, this.context);
    this.pending = [];
    return text;
  }
}

/**
 * Stop strings: text is released only once it cannot be the start of a stop string; when one
 * matches, the text before it is released and the stop text itself never is.
 */
export class StopMatcher {
  private buffer = "";
  /** The stop string that matched, once one has. */
  matched: string | undefined;
  constructor(private readonly stops: readonly string[]) {}

  push(text: string): { emit: string; stopped: boolean } {
    this.buffer += text;
    if (this.stops.length === 0) {
      const emit = this.buffer;
      this.buffer = "";
      return { emit, stopped: false };
    }
    let first = -1;
    for (const s of this.stops) {
      const i = this.buffer.indexOf(s);
      if (i !== -1 && (first === -1 || i < first)) {
        first = i;
        this.matched = s;
      }
    }
    if (first !== -1) {
      const emit = this.buffer.slice(0, first);
      this.buffer = "";
      return { emit, stopped: true };
    }
    let hold = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, this.buffer.length); k > hold; k--) {
        if (this.buffer.endsWith(s.slice(0, k))) {
          hold = k;
          break;
        }
      }
    }
    const emit = this.buffer.slice(0, this.buffer.length - hold);
    this.buffer = this.buffer.slice(this.buffer.length - hold);
    return { emit, stopped: false };
  }

  flush(): string {
    const rest = this.buffer;
    this.buffer = "";
    return rest;
  }
}
