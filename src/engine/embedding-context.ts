import type { LlamaContext, LlamaModel, Token } from "node-llama-cpp";
import { InvalidGenerationError, RequestTimeoutError } from "./errors.js";
import { type Pooling, unembeddableReason } from "./embedding-pooling.js";

/**
 * The calls made on node-llama-cpp 3.21.1's native context (`AddonContext`) of a context created
 * with embeddings on. `getEmbedding` reads `llama_get_embeddings_seq(ctx, 0)`: only sequence 0's
 * pooled vector is readable after a decode, so each input is its own decode.
 */
interface NativeEmbeddingContext {
  initBatch(size: number): void;
  addToBatch(sequenceId: number, firstPosition: number, tokens: Uint32Array, logitIndexes: Uint32Array): Uint32Array;
  decodeBatch(): Promise<void>;
  getEmbedding(inputTokensLength: number): Float64Array;
  removeTokenCellsFromSequence(sequenceId: number, start: number, end: number): boolean;
}

const METHODS = ["initBatch", "addToBatch", "decodeBatch", "getEmbedding", "removeTokenCellsFromSequence"] as const;

export interface EmbeddingContextOptions {
  /** `llama_tokenize` with special tokens parsed and nothing added (the model's, off the event loop for long texts). */
  tokenizeRaw?: (text: string) => Promise<Token[]>;
  /** Tokens one input may hold: the context and the batch (a pooled input must fit one decode). */
  contextSize: number;
  threads: number;
  flashAttention: boolean;
  lora?: string;
  requestTimeoutMs: number;
}

interface Job {
  inputs: Token[][];
  vectors: Float32Array[];
  signal: AbortSignal;
  resolve(vectors: Float32Array[]): void;
  reject(e: unknown): void;
}

/**
 * A model's embedding context: its own llama.cpp context (one sequence, embeddings on), created on
 * the first embedding request, so a chat model pays nothing until asked. Its decodes run beside
 * the generation decode loop's, never inside it: an embedding waits at most for the generation
 * step in flight. Requests take turns one input at a time, so a large batch does not hold up a
 * small request behind it.
 */
export class EmbeddingContext {
  private context?: Promise<{ llama: LlamaContext; native: NativeEmbeddingContext }>;
  private created?: LlamaContext;
  private readonly waiting: Job[] = [];
  private running = false;
  private disposed = false;

  constructor(
    private readonly model: LlamaModel,
    readonly pooling: Pooling,
    private readonly options: EmbeddingContextOptions,
  ) {}

  /** Tokens one input may hold. */
  get contextSize(): number {
    return this.options.contextSize;
  }

  /** Vector length. */
  get dimensions(): number {
    return this.model.embeddingVectorSize;
  }

  /** Bytes its context holds once created. */
  get stateBytes(): number {
    return this.created?.stateSize ?? 0;
  }

  /** Text → tokens as llama.cpp tokenizes for embeddings: special tokens parsed, BOS / SEP / EOS as the vocabulary adds them. */
  async tokenize(text: string): Promise<Token[]> {
    const tokens = await (this.options.tokenizeRaw?.(text) ?? this.model.tokenize(text, true));
    const first = this.beginToken;
    const last = this.endToken;
    if (first !== null && tokens[0] !== first) tokens.unshift(first);
    if (last !== null && tokens.at(-1) !== last) tokens.push(last);
    return tokens;
  }

  /** The token an input starts with (llama.cpp's `add_special` rules per vocabulary type), if any. */
  private get beginToken(): Token | null {
    const { tokens: special, vocabularyType: vocab } = this.model;
    if (vocab === "wpm") return special.bos;
    return vocab !== "ugm" && vocab !== "rwkv" && special.shouldPrependBosToken ? special.bos : null;
  }

  /** The token an input ends with (SEP / EOS), if any: it stays last when an input is cut to fit. */
  get endToken(): Token | null {
    const { tokens: special, vocabularyType: vocab } = this.model;
    if (vocab === "wpm") return special.sep;
    return vocab === "ugm" || (vocab !== "rwkv" && special.shouldAppendEosToken) ? special.eos : null;
  }

  /**
   * One pooled vector per input (not normalised), in order. Inputs must already be checked
   * (non-empty, within contextSize). Cancelled by `signal`; past the time limit a RequestTimeoutError.
   */
  embed(inputs: Token[][], signal?: AbortSignal): Promise<Float32Array[]> {
    const reason = unembeddableReason(this.pooling);
    if (reason) return Promise.reject(new InvalidGenerationError(`this model cannot embed: ${reason}`, "model"));
    const deadline = AbortSignal.timeout(this.options.requestTimeoutMs);
    const combined = signal ? AbortSignal.any([signal, deadline]) : deadline;
    return new Promise<Float32Array[]>((resolve, reject) => {
      const fail = (e: unknown) => reject(deadline.aborted ? new RequestTimeoutError(this.options.requestTimeoutMs) : e);
      this.waiting.push({ inputs, vectors: [], signal: combined, resolve, reject: fail });
      void this.drain();
    });
  }

  private native(): Promise<{ llama: LlamaContext; native: NativeEmbeddingContext }> {
    this.context ??= (async () => {
      const { contextSize, threads, flashAttention, lora } = this.options;
      const llama = await this.model.createContext({
        contextSize,
        batchSize: contextSize,
        sequences: 1,
        threads,
        flashAttention,
        lora: lora ? { adapters: [{ filePath: lora }] } : undefined,
        failedCreationRemedy: false,
        // node-llama-cpp's own embedding context passes this internal option; its public one serialises with a lock.
        _embeddings: true,
      } as Parameters<LlamaModel["createContext"]>[0]);
      const native = (llama as unknown as { _ctx?: Record<string, unknown> })._ctx;
      const missing = METHODS.filter((m) => typeof native?.[m] !== "function");
      if (missing.length > 0) {
        await llama.dispose();
        throw new Error(`this node-llama-cpp lacks what Shimmy's embeddings drive (${missing.join(", ")}); Shimmy needs node-llama-cpp 3.21.1 exactly`);
      }
      this.created = llama;
      return { llama, native: native as unknown as NativeEmbeddingContext };
    })();
    // A failed creation is retried by the next request rather than cached.
    this.context.catch(() => (this.context = undefined));
    return this.context;
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.waiting.length > 0) {
        const job = this.waiting.shift()!;
        if (this.disposed) {
          job.reject(new Error("the model was unloaded"));
          continue;
        }
        if (job.signal.aborted) {
          job.reject(job.signal.reason);
          continue;
        }
        try {
          const { native } = await this.native();
          job.vectors.push(await this.decodeOne(native, job.inputs[job.vectors.length]!));
        } catch (e) {
          job.reject(e);
          continue;
        }
        if (job.vectors.length === job.inputs.length) job.resolve(job.vectors);
        else this.waiting.push(job);
      }
    } finally {
      this.running = false;
    }
  }

  private async decodeOne(native: NativeEmbeddingContext, tokens: Token[]): Promise<Float32Array> {
    native.initBatch(tokens.length);
    // Every position is an output (llama.cpp pools over outputs, and warns when they are not marked).
    native.addToBatch(0, 0, Uint32Array.from(tokens), Uint32Array.from(tokens, (_, i) => i));
    try {
      await native.decodeBatch();
      return Float32Array.from(native.getEmbedding(tokens.length));
    } finally {
      native.removeTokenCellsFromSequence(0, 0, -1);
    }
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    for (const job of this.waiting.splice(0)) job.reject(new Error("the model was unloaded"));
    const context = await this.context?.catch(() => undefined);
    await context?.llama.dispose();
  }
}
