import type { Token } from "node-llama-cpp";
import { InputTooLongError, InvalidGenerationError } from "./errors.js";

/** One input to embed: text (tokenized by the model) or token ids used as given. */
export type EmbeddingInput = { kind: "text"; text: string } | { kind: "tokens"; tokens: number[] };

/** Inputs one request may carry (OpenAI's own limit per request). */
export const MAX_EMBEDDING_INPUTS = 2048;

/** The checks that need no model: run before a model is loaded for the request. */
export function checkEmbeddingInputs(inputs: readonly EmbeddingInput[], param: string): void {
  if (inputs.length === 0) throw new InvalidGenerationError(`'${param}' holds no input to embed`, param);
  if (inputs.length > MAX_EMBEDDING_INPUTS) throw new InvalidGenerationError(`'${param}' holds ${inputs.length} inputs; at most ${MAX_EMBEDDING_INPUTS} per request`, param);
  inputs.forEach((input, i) => {
    const empty = input.kind === "text" ? input.text.length === 0 : input.tokens.length === 0;
    if (empty) throw new InvalidGenerationError(`'${param}[${i}]' is empty: there is nothing to embed`, `${param}[${i}]`);
  });
}

export interface FitOptions {
  /** Tokens an input may hold. */
  limit: number;
  /** Cut a longer input to `limit` (keeping the start, and `endToken` last) instead of refusing it. */
  truncate: boolean;
  endToken: Token | null;
  vocabSize: number;
  param: string;
}

/** Tokenized inputs checked against the vocabulary and the context: refused, or cut when asked. */
export function fitEmbeddingInputs(tokenized: Token[][], o: FitOptions): Token[][] {
  return tokenized.map((tokens, i) => {
    const bad = tokens.find((t) => !Number.isInteger(t) || t < 0 || t >= o.vocabSize);
    if (bad !== undefined) throw new InvalidGenerationError(`'${o.param}[${i}]' holds token id ${bad}, outside the vocabulary (0..${o.vocabSize - 1})`, `${o.param}[${i}]`);
    if (tokens.length <= o.limit) return tokens;
    if (!o.truncate) throw new InputTooLongError(i, tokens.length, o.limit);
    const cut = tokens.slice(0, o.limit);
    if (o.endToken !== null && tokens.at(-1) === o.endToken) cut[o.limit - 1] = o.endToken;
    return cut;
  });
}

/** The vector scaled to length 1 (a zero vector stays zero), as Ollama and llama-server normalise. */
export function l2Normalized(vector: Float32Array): number[] {
  let sum = 0;
  for (const x of vector) sum += x * x;
  const scale = sum > 0 ? 1 / Math.sqrt(sum) : 0;
  return Array.from(vector, (x) => x * scale);
}
