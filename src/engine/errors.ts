/** Typed engine errors; protocol layers map them to their own envelopes and status codes. */

export class ContextOverflowError extends Error {
  override readonly name = "ContextOverflowError";
  /** `atLeast`: the prompt was not tokenized; its length alone proves at least `promptTokens`. */
  constructor(readonly promptTokens: number, readonly contextSize: number, readonly atLeast = false) {
    super(`the prompt is ${atLeast ? "at least " : ""}${promptTokens} tokens, but the model's context holds ${contextSize} (including at least 1 generated token); shorten the prompt or raise --ctx-size`);
  }
}

/** A request the engine cannot run as asked (e.g. a logit_bias token id outside the vocabulary). */
export class InvalidGenerationError extends Error {
  override readonly name: string = "InvalidGenerationError";
  constructor(message: string, readonly param?: string) {
    super(message);
  }
}

/** A token id the model's vocabulary does not have (detokenizing it would crash llama.cpp). */
export class InvalidTokenError extends InvalidGenerationError {
  override readonly name = "InvalidTokenError";
  constructor(readonly token: number, readonly vocabSize: number, param = "tokens") {
    super(`token id ${token} is outside the model's vocabulary (0..${vocabSize - 1})`, param);
  }
}

export class ModelLoadError extends Error {
  override readonly name = "ModelLoadError";
  constructor(readonly model: string, cause: unknown) {
    super(`model "${model}" failed to load: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

/** The model exists but cannot be served (corrupt, adapter without base, not yet convertible…). */
export class ModelUnusableError extends Error {
  override readonly name = "ModelUnusableError";
  constructor(readonly model: string, reason: string) {
    super(`model "${model}" cannot be served: ${reason}`);
  }
}

/** Every slot is busy and the wait queue is full. */
export class QueueFullError extends Error {
  override readonly name = "QueueFullError";
  constructor(readonly model: string, readonly queued: number, readonly retryAfterSeconds: number) {
    super(`model "${model}" is busy: all slots are in use and ${queued} requests are already waiting; retry in about ${retryAfterSeconds} s`);
  }
}

/** The request ran past the server's per-request time limit (queueing included). */
export class RequestTimeoutError extends Error {
  override readonly name = "RequestTimeoutError";
  constructor(readonly timeoutMs: number) {
    super(`the request did not finish within the server's ${Math.round(timeoutMs / 1000)} s limit`);
  }
}

/** An embedding input longer than the model's context, where cutting it was not asked for. */
export class InputTooLongError extends Error {
  override readonly name = "InputTooLongError";
  constructor(readonly index: number, readonly tokens: number, readonly contextSize: number) {
    super(`input ${index} is ${tokens} tokens, but the model's context holds ${contextSize}; shorten it, let it be cut (Ollama's truncate), or raise --ctx-size`);
  }
}

/** A draft model (speculative decoding) whose vocabulary is not the target model's: its token ids would mean other text. */
export class DraftVocabularyMismatchError extends Error {
  override readonly name = "DraftVocabularyMismatchError";
  constructor(readonly draft: string, readonly target: string, difference: string) {
    super(`draft model "${draft}" cannot draft for "${target}": their vocabularies differ (${difference}); a draft model must share the target's tokenizer`);
  }
}
