import type { Llama, LlamaContext, LlamaModel } from "node-llama-cpp";

/**
 * The calls Shimmy's decode loop makes on node-llama-cpp 3.21.1's native context (the internal
 * `LlamaContext._ctx`, an `AddonContext` from llama/addon/AddonContext.cpp). Driving it directly
 * instead of through `LlamaContextSequence.evaluate` removes node-llama-cpp's per-token JavaScript
 * (locks, promise chains, a sampler config rebuilt and re-sent every token): measured on 2 cores,
 * 100M Q8_0, native build, 2 threads, the same decode + sample calls ran at ~188 tok/s directly
 * and ~170 tok/s through `evaluate`; llama-server's own timing on that box was 183–203 tok/s.
 * The dependency is pinned exactly, and `nativeHandles` refuses to start on anything else.
 */
export interface NativeContext {
  /** Starts a batch of `size` tokens (at most the context's batch size). */
  initBatch(size: number): void;
  /** Adds tokens of one sequence at consecutive positions; returns the batch indexes of `logitIndexes`. */
  addToBatch(sequenceId: number, firstPosition: number, tokens: Uint32Array, logitIndexes: Uint32Array): Uint32Array;
  /** `llama_decode` of the current batch, on a libuv pool thread. */
  decodeBatch(): Promise<void>;
  /** Samples from one output of the last decode and tells the sampler (penalties, grammar) about the token; -1 = none. */
  sampleToken(batchLogitIndex: number, sampler: NativeSampler): Promise<number>;
  /**
   * The same, also returning the candidates the sampler saw after its chain, sorted by logit and
   * softmaxed, flattened as [id, p, id, p, …]. With a greedy sampler and no penalties, bias or
   * grammar that is the model's own distribution over the whole vocabulary.
   */
  sampleToken(batchLogitIndex: number, sampler: NativeSampler, probabilities: true, confidence: false): Promise<[number, number[] | undefined]>;
  setThreads(threads: number): void;
  /** Drops a sequence's KV cells in positions [start, end); end -1 = to the end. Synchronous: only between decodes. */
  removeTokenCellsFromSequence(sequenceId: number, start: number, end: number): boolean;
  /**
   * `llama_state_seq_save_file` on a libuv pool thread: the sequence's KV state and `tokens` (what
   * it holds) into a file; resolves with the file's size. Not alongside a decode (it reads the cache).
   */
  saveSequenceStateToFile(path: string, sequenceId: number, tokens: Uint32Array): Promise<number>;
  /**
   * `llama_state_seq_load_file` on a libuv pool thread: replaces the sequence's cache with a saved
   * state (at most `maxTokens` tokens); resolves with the tokens the state holds.
   */
  loadSequenceStateFromFile(path: string, sequenceId: number, maxTokens: number): Promise<Uint32Array>;
}

/** The native fields of node-llama-cpp's sampler config (`AddonSampler::ApplyConfig`); absent = off. */
export interface NativeSamplerConfig {
  temperature: number;
  topK?: number;
  topP?: number;
  minP?: number;
  seed: number;
  repeatPenalty?: number;
  repeatPenaltyMaxTokens?: number;
  repeatPenaltyTokens?: Uint32Array;
  repeatPenaltyPresencePenalty?: number;
  repeatPenaltyFrequencyPenalty?: number;
  tokenBiasKeys?: Uint32Array;
  tokenBiasValues?: Float32Array;
  /** A grammar's evaluation state (NativeGrammar.newState()): the sampler only picks tokens it allows. */
  grammarEvaluationState?: object;
}

/** A parsed GBNF grammar; each generation constrained by it needs its own state. */
export interface NativeGrammar {
  newState(): object;
}

/** A native sampler chain: one per request, disposed when the request ends. */
export interface NativeSampler {
  applyConfig(config: NativeSamplerConfig): void;
  dispose(): void;
}

export interface NativeHandles {
  context: NativeContext;
  createSampler(): NativeSampler;
  /** Parses GBNF text (root rule `root`); throws when llama.cpp cannot parse it. */
  parseGrammar(gbnf: string): NativeGrammar;
}

interface AddonBindings {
  AddonSampler?: new (model: unknown) => NativeSampler;
  AddonGrammar?: new (text: string, options: { addonExports: unknown; rootRuleName: string }) => object;
  AddonGrammarEvaluationState?: new (model: unknown, grammar: object) => object;
}

const CONTEXT_METHODS = ["initBatch", "addToBatch", "decodeBatch", "sampleToken", "setThreads", "removeTokenCellsFromSequence", "saveSequenceStateToFile", "loadSequenceStateFromFile"] as const;

/** The native objects behind a context, checked: a changed node-llama-cpp fails here, by name, not mid-request. */
export function nativeHandles(llama: Llama, model: LlamaModel, context: LlamaContext): NativeHandles {
  const native = (context as unknown as { _ctx?: Record<string, unknown> })._ctx;
  const bindings = (llama as unknown as { _bindings?: AddonBindings })._bindings;
  const { AddonSampler: Sampler, AddonGrammar: Grammar, AddonGrammarEvaluationState: GrammarState } = bindings ?? {};
  const addonModel = (model as unknown as { _model?: unknown })._model;
  const missing = [
    ...CONTEXT_METHODS.filter((m) => typeof native?.[m] !== "function").map((m) => `_ctx.${m}`),
    ...(["AddonSampler", "AddonGrammar", "AddonGrammarEvaluationState"] as const).filter((c) => typeof bindings?.[c] !== "function").map((c) => `_bindings.${c}`),
    ...(addonModel ? [] : ["LlamaModel._model"]),
  ];
  if (missing.length > 0) throw new Error(`this node-llama-cpp lacks what Shimmy's decode loop drives (${missing.join(", ")}); Shimmy needs node-llama-cpp 3.21.1 exactly`);
  return {
    context: native as unknown as NativeContext,
    createSampler: () => new Sampler!(addonModel),
    parseGrammar: (gbnf) => {
      const grammar = new Grammar!(gbnf, { addonExports: bindings, rootRuleName: "root" });
      // A state made from the grammar parses its text again; cloning a pristine one does not.
      const pristine = new GrammarState!(addonModel, grammar);
      const clone = GrammarState as unknown as new (existing: object) => object;
      return { newState: () => new clone(pristine) };
    },
  };
}
