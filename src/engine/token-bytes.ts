import type { LlamaModel, Token } from "node-llama-cpp";

/** GPT-2's byte-level BPE alphabet: each byte is stored in the vocabulary as one printable character. */
function byteLevelDecoder(): Map<string, number> {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const map = new Map<string, number>();
  let next = 256;
  for (let b = 0; b < 256; b++) map.set(String.fromCodePoint(printable.includes(b) ? b : next++), b);
  return map;
}

let byteLevel: Map<string, number> | undefined;

/**
 * A token's text and its exact UTF-8 bytes (OpenAI's logprobs `bytes`). The text of a token that
 * holds part of a character is lossy, so its bytes come from the vocabulary entry instead:
 * `<0xNN>` byte-fallback pieces, or byte-level BPE's character-per-byte alphabet.
 */
export class TokenBytes {
  private readonly cache = new Map<number, { text: string; bytes: number[] }>();
  private readonly vocabText: (token: Token) => string | undefined;
  /** A plain token put before the one detokenized: SentencePiece drops a leading space at the start of a text. */
  private readonly lead: Token[];
  private readonly leadText: string;

  constructor(private readonly model: LlamaModel) {
    const native = (model as unknown as { _model?: { getTokenString?: (t: number) => string | undefined } })._model;
    this.vocabText = (token) => native?.getTokenString?.(token);
    this.lead = model.tokenize("a", false).slice(-1);
    this.leadText = model.detokenize(this.lead, true);
  }

  of(token: Token): { text: string; bytes: number[] } {
    let entry = this.cache.get(token);
    if (!entry) {
      const text = this.model.detokenize([...this.lead, token], true).slice(this.leadText.length);
      entry = { text, bytes: text.includes("\uFFFD") ? this.rawBytes(token, text) : [...Buffer.from(text, "utf8")] };
      this.cache.set(token, entry);
    }
    return entry;
  }

  private rawBytes(token: Token, text: string): number[] {
    const piece = this.vocabText(token) ?? "";
    const fallback = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece);
    if (fallback) return [parseInt(fallback[1]!, 16)];
    if (this.model.vocabularyType === "bpe") {
      byteLevel ??= byteLevelDecoder();
      const bytes = [...piece].map((c) => byteLevel!.get(c));
      if (bytes.every((b) => b !== undefined)) return bytes as number[];
    }
    return [...Buffer.from(text, "utf8")];
  }
}
