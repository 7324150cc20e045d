import type { Llama, LlamaContext, LlamaModel, Token } from "node-llama-cpp";
import { setImmediate as nextTurn } from "node:timers/promises";
import type { Config } from "../config/config.js";
import type { ModelSpec } from "../discovery/types.js";
import { type ChatTemplate, JinjaChatTemplate, TranscriptChatTemplate } from "./chat-template.js";
import { DecodeJob, DecodeLoop } from "./decode-loop.js";
import { EmbeddingContext } from "./embedding-context.js";
import { type PoolingPlan, poolingPlan } from "./embedding-pooling.js";
import { ContextOverflowError, DraftVocabularyMismatchError, InvalidGenerationError, InvalidTokenError, RequestTimeoutError } from "./errors.js";
import type { OutputParser } from "./chat-format/types.js";
import { type NativeGrammar, type NativeHandles, type NativeSampler, nativeHandles } from "./native-context.js";
import { checkGrammarBounds } from "./grammar/gbnf-limits.js";
import { DraftModel } from "./speculative/draft-model.js";
import { draftModelSpeculation, promptLookup, type Speculation } from "./speculative/speculation.js";
import { OutputAssembler } from "./output-assembler.js";
import { detectOutputFormat, type ModelOutputFormat, outputPlan, renderPlan } from "./output-plan.js";
import { nativeSamplerConfig } from "./sampler-config.js";
import { isEmbeddingOnly } from "./servability.js";
import { type SlotGrant, SlotPool } from "./slots.js";
import { StopMatcher, TokenTextDecoder } from "./text-stream.js";
import type { OneTokenThreads } from "./thread-chooser.js";
import { PromptBound } from "./prompt-bound.js";
import type { PromptWorker } from "./prompt-worker/prompt-worker.js";
import { TokenBytes } from "./token-bytes.js";
import { fileStamp, promptCacheKey } from "./prompt-cache/key.js";
import { type PromptCacheSettings, SlotStates, type SlotStatesOptions } from "./prompt-cache/slot-states.js";
import type { ChatMessage, DoneEvent, FinishReason, GenerationOutput, GenerationRequest, OutputSink, Timings, TokenLogprob } from "./types.js";

/** The Config settings a load uses (documented on Config). */
export type LoadOptions = Pick<Config, "ctxSize" | "ctxCap" | "threads" | "threadsAlternative" | "batchThreads" | "batchSize" | "parallel" | "maxQueue" | "requestTimeoutMs" | "flashAttention" | "speculative" | "draftMax" | "draftMin"> & {
  /** The draft model to load beside it (speculative decoding), its name or path resolved to a GGUF (absent: none). */
  draft?: { name: string; ggufPath: string; spec?: ModelSpec };
  /** Why the configured draft model is not loaded beside it (its probe failed), if so. */
  draftRefused?: string;
  /** Where large prompts are rendered and tokenized (absent: on the calling thread). */
  promptWorker?: PromptWorker;
  /** Where long prompt prefixes' KV states are saved and restored (absent: off). */
  promptStates?: PromptCacheSettings;
};

/** Inputs from this many characters are tokenized (and chats this large rendered) in the prompt worker. */
const OFF_THREAD_CHARS = 16 * 1024;
/** Chats with more messages than this are rendered in the prompt worker whatever their length. */
const OFF_THREAD_MESSAGES = 64;

/** A request after tokenization and checks: everything that can fail before streaming starts. */
export interface PreparedGeneration {
  request: GenerationRequest;
  promptTokens: Token[];
  maxTokens: number;
  /** The grammar the output must match (a response format or the tool-call syntax). */
  grammar?: NativeGrammar;
  /** A fresh parser splitting the output into answer, reasoning and tool calls; absent = plain text. */
  parser?: () => OutputParser;
  /** Detokenize special tokens as text: the output format's markers are special tokens. */
  renderSpecialTokens?: boolean;
}

/** The same prepared request for choice `index` of n: its seed moves by the index (OpenAI's n with a seed). */
export function forChoice(prepared: PreparedGeneration, index: number): PreparedGeneration {
  const seed = prepared.request.sampling.seed;
  if (index === 0 || seed === undefined) return prepared;
  return { ...prepared, request: { ...prepared.request, sampling: { ...prepared.request.sampling, seed: seed + index } } };
}

const MAX_STOP_LENGTH = 512;

/** Tokens in an embedding-only model's (unused) generation context: llama.cpp's smallest. */
const EMBEDDING_ONLY_GENERATION_CONTEXT = 256;

/** The prompt cache's settings with this load's key: what SlotStates needs besides the live context. */
type ModelPromptCache = Omit<SlotStatesOptions, "context" | "loop" | "contextSize">;

const emptyOutput = (): GenerationOutput => ({ content: "", reasoning: "", toolCalls: [] });

/** A model with its context and slots, ready to generate. */
export class LoadedModel {
  readonly slots: SlotPool;
  private readonly loop: DecodeLoop;
  private readonly tokenBytes: TokenBytes;
  private readonly promptBound: PromptBound;
  /** Its tool-call syntax and reasoning, from the chat template and vocabulary. */
  readonly outputFormat: ModelOutputFormat;
  /** Token ids run 0..vocabSize-1; llama.cpp aborts the process on any other. */
  readonly vocabSize: number;
  /** Parsed grammars by text (16, least recently used dropped): agents resend the same tools and schemas every turn. */
  private readonly grammars = new Map<string, NativeGrammar>();
  /** Its embedding context (llama.cpp's is created on the first embedding request). */
  readonly embeddings: EmbeddingContext;
  /** Requests holding this model (queued or generating); the pool never unloads it while > 0. */
  pins = 0;
  /** When a request last took or let go of it (set by the pool; least recent unloads first). */
  lastUsed = Date.now();
  /** Aborts every generation at once (shutdown, unload): the model is disposed only after they settle. */
  private readonly stopping = new AbortController();
  /** generate() calls not yet returned: their decode steps may still be using the context. */
  private readonly running = new Set<Promise<unknown>>();
  /** The draft model's name, when one drafts for it (speculative decoding). */
  get draftModelName(): string | undefined {
    return this.draftModel ? this.options.draft?.name : undefined;
  }

  /** Why the configured draft model does not draft for this one (another vocabulary), if it does not. */
  get draftRefusal(): string | undefined {
    return this.draftRefused;
  }

  /** Its slots' states saved to and restored from the prompt cache (absent: off). */
  private readonly slotStates: SlotStates | undefined;

  private constructor(
    readonly spec: ModelSpec,
    /** The GGUF file loaded: the spec's own, or its conversion. */
    readonly ggufPath: string,
    readonly model: LlamaModel,
    readonly context: LlamaContext,
    readonly contextSize: number,
    readonly template: ChatTemplate,
    readonly loadMs: number,
    private readonly options: LoadOptions,
    private readonly native: NativeHandles,
    pooling: PoolingPlan,
    promptCache: ModelPromptCache | undefined,
    /** The smaller model drafting for it (absent: prompt lookup, or no speculation). */
    private readonly draftModel: DraftModel | undefined,
    private readonly draftRefused: string | undefined,
  ) {
    this.slots = new SlotPool(context.totalSequences, spec.name, options.maxQueue);
    this.loop = new DecodeLoop(native.context, {
      batchSize: context.batchSize,
      threads: options.threads,
      threadsAlternative: options.threadsAlternative,
      batchThreads: options.batchThreads,
      isEndOfGeneration: (token) => model.isEogToken(token),
      draftsWherePaying: options.speculative === "auto",
    });
    this.tokenBytes = new TokenBytes(model);
    this.promptBound = new PromptBound(model);
    const vocabulary = (model.fileInfo.metadata as { tokenizer?: { ggml?: { tokens?: unknown } } }).tokenizer?.ggml?.tokens;
    this.vocabSize = Array.isArray(vocabulary) ? vocabulary.length : (spec.summary?.vocabSize ?? 0);
    this.outputFormat = detectOutputFormat(model, template.kind === "model" ? template.source : undefined);
    this.embeddings = new EmbeddingContext(model, pooling.pooling, {
      contextSize,
      threads: options.batchThreads,
      flashAttention: options.flashAttention && model.flashAttentionSupported,
      lora: spec.lora,
      requestTimeoutMs: options.requestTimeoutMs,
      tokenizeRaw: (text) => this.tokenizeRaw(text, true),
    });
    this.slotStates = promptCache && new SlotStates({ ...promptCache, context: native.context, loop: this.loop, contextSize });
  }

  /** The thread count one-token steps use now, and the measured ms per step by count. */
  get oneTokenThreads(): OneTokenThreads {
    return this.loop.oneTokenThreads;
  }

  /** Bytes this model holds: weights plus its context (KV cache and compute buffers). */
  get memoryBytes(): number {
    return this.model.size + this.context.stateSize + this.embeddings.stateBytes + (this.draftModel?.memoryBytes ?? 0);
  }

  /** Loads `ggufPath` (the spec's file, or its converted GGUF) with one context of `parallel` slots. */
  static async load(llama: Llama, spec: ModelSpec, ggufPath: string, options: LoadOptions): Promise<LoadedModel> {
    const started = performance.now();
    const pooling = poolingPlan(ggufPath);
    const model = await llama.loadModel({ modelPath: ggufPath, metadataOverrides: pooling.overrides });
    try {
      const contextSize = options.ctxSize ?? Math.min(model.trainContextSize, options.ctxCap);
      const flashAttention = options.flashAttention && model.flashAttentionSupported;
      // An embedding-only model is never asked to generate (the pool refuses it): its generation
      // context is the smallest there is, and its embedding context gets the whole `contextSize`.
      const embeddingOnly = isEmbeddingOnly(spec);
      const context = await model.createContext({
        contextSize: embeddingOnly ? Math.min(contextSize, EMBEDDING_ONLY_GENERATION_CONTEXT) : contextSize,
        sequences: embeddingOnly ? 1 : options.parallel,
        // The decode loop sets the count per step (threads / batchThreads).
        threads: options.batchThreads,
        batchSize: embeddingOnly ? Math.min(options.batchSize ?? EMBEDDING_ONLY_GENERATION_CONTEXT, EMBEDDING_ONLY_GENERATION_CONTEXT) : options.batchSize,
        flashAttention,
        lora: spec.lora ? { adapters: [{ filePath: spec.lora }] } : undefined,
        // Slot size is a promise to clients (/v1/models); never shrink it silently.
        failedCreationRemedy: false,
      });
      let native: NativeHandles;
      try {
        native = nativeHandles(llama, model, context);
      } catch (e) {
        await context.dispose();
        throw e;
      }
      const source = model.fileInfo.metadata?.tokenizer?.chat_template;
      const tokenText = (t: Token | null): string => (t === null ? "" : model.detokenize([t], true));
      const template =
        typeof source === "string"
          ? await JinjaChatTemplate.create(source, { bosToken: tokenText(model.tokens.bos), eosToken: tokenText(model.tokens.eos) })
          : new TranscriptChatTemplate();
      let promptCache: ModelPromptCache | undefined;
      if (options.promptStates) {
        const files = await Promise.all([ggufPath, ...(spec.lora ? [spec.lora] : [])].map(fileStamp));
        const key = promptCacheKey(files, { contextSize, sequences: context.totalSequences, flashAttention, kvType: "f16/f16" });
        promptCache = { ...options.promptStates, key, files };
      }
      let draftModel: DraftModel | undefined;
      let draftRefused = options.draftRefused;
      if (options.draft && (options.speculative === "draft" || options.speculative === "auto")) {
        try {
          draftModel = await DraftModel.load(llama, model, spec.name, {
            ...options.draft,
            contextSize,
            sequences: context.totalSequences,
            threads: options.threads,
            batchSize: options.batchSize,
            flashAttention: options.flashAttention,
          });
        } catch (e) {
          // --draft-model applies to every model the pool loads: one of another vocabulary serves
          // without drafts (said in its load event) rather than not at all.
          if (e instanceof DraftVocabularyMismatchError) draftRefused = e.message;
          else {
            await context.dispose();
            throw e;
          }
        }
      }
      return new LoadedModel(spec, ggufPath, model, context, contextSize, template, performance.now() - started, options, native, pooling, promptCache, draftModel, draftRefused);
    } catch (e) {
      await model.dispose();
      throw e;
    }
  }

  /**
   * `llama_tokenize` without BOS/EOS: on this thread for short texts, in the prompt worker for
   * long ones (a synchronous native call that grows with the text would hold the event loop).
   */
  async tokenizeRaw(text: string, parseSpecial: boolean): Promise<Token[]> {
    const worker = this.options.promptWorker;
    if (worker === undefined || text.length < OFF_THREAD_CHARS) return this.model.tokenize(text, parseSpecial);
    const tokens = (await worker.tokenize(this.ggufPath, text, parseSpecial)) as Token[];
    this.throwIfStopped();
    return tokens;
  }

  /** After waiting on the prompt worker: the model may have been unloaded (shutdown) meanwhile, and its native handles with it. */
  private throwIfStopped(): void {
    if (this.stopping.signal.aborted) throw this.stopping.signal.reason;
  }

  /** Prompt text → tokens, parsing special tokens and adding BOS where the model expects it. */
  async tokenizePrompt(text: string): Promise<Token[]> {
    const tokens = await this.tokenizeRaw(text, true);
    const bos = this.model.tokens.bos;
    if (bos !== null && this.model.tokens.shouldPrependBosToken && tokens[0] !== bos) tokens.unshift(bos);
    return tokens;
  }

  /**
   * Text → tokens as llama.cpp's `llama_tokenize` does: `parseSpecial` reads special-token text
   * (`<s>`, `<|im_start|>`) as those tokens; `addSpecial` adds BOS (and EOS) where the model's
   * metadata asks for them.
   */
  async tokenize(text: string, options: { addSpecial: boolean; parseSpecial: boolean }): Promise<Token[]> {
    const tokens = await this.tokenizeRaw(text, options.parseSpecial);
    if (!options.addSpecial) return tokens;
    const { bos, eos, shouldPrependBosToken, shouldAppendEosToken } = this.model.tokens;
    if (bos !== null && shouldPrependBosToken) tokens.unshift(bos);
    if (eos !== null && shouldAppendEosToken) tokens.push(eos);
    return tokens;
  }

  /**
   * Tokens → text as llama-server's /detokenize writes it: each token's piece (special tokens
   * written out, the first piece's leading space kept), bytes joined before decoding so a
   * character split over tokens is whole. An id outside the vocabulary is an InvalidTokenError.
   */
  detokenize(ids: readonly number[]): string {
    return Buffer.concat(ids.map((id) => Buffer.from(this.tokenPiece(id).bytes))).toString("utf8");
  }

  /** One token's text as it reads inside a text (leading space kept), and its exact UTF-8 bytes. */
  tokenPiece(id: number): { text: string; bytes: number[] } {
    return this.tokenBytes.of(this.checkedToken(id));
  }

  private checkedToken(id: number): Token {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) throw new InvalidTokenError(id, this.vocabSize);
    return id as Token;
  }

  /** The chat as the model's template writes it; large chats are rendered in the prompt worker. */
  async renderChat(request: GenerationRequest): Promise<string> {
    const { messages, templateTools } = renderPlan(request, this.outputFormat, this.template.usesTools);
    const options = { tools: templateTools, variables: request.templateVariables };
    const worker = this.options.promptWorker;
    try {
      if (worker === undefined || this.template.kind !== "model" || !isLargeChat(messages)) return this.template.render(messages, options);
      // Its own event-loop turn: building and copying a large chat's variables is a block of its own.
      await nextTurn();
      const text = await worker.render(this.template.source, this.template.context(messages, options));
      this.throwIfStopped();
      return text;
    } catch (e) {
      if (e === this.stopping.signal.reason) throw e;
      // Templates reject conversations they do not support (roles out of order, a system
      // message the model has no place for): the request is at fault, not the server.
      throw new InvalidGenerationError(`the model's chat template rejected these messages: ${(e as Error).message}`, "messages");
    }
  }

  /** At least this many tokens for `text`, without tokenizing it (0: no bound; PromptBound). */
  minTokens(text: string): number {
    return this.promptBound.minTokens(text);
  }

  /** The start of `text` that still holds at least `tokens` tokens (the rest would be truncated away). */
  prefixHolding(text: string, tokens: number): string {
    return this.promptBound.prefixHolding(text, tokens);
  }

  /** Tokenizes and validates; throws typed errors before any response is started. */
  async prepare(request: GenerationRequest): Promise<PreparedGeneration> {
    const longStop = request.stop.find((s) => s.length > MAX_STOP_LENGTH);
    // Text that might begin a stop string is held back and compared again with every token.
    if (longStop !== undefined) throw new InvalidGenerationError(`stop strings are at most ${MAX_STOP_LENGTH} characters (one has ${longStop.length})`, "stop");
    const rendered = request.input.kind === "chat" ? await this.renderChat(request) : undefined;
    const text = rendered ?? (request.input as { text: string }).text;
    const plan = outputPlan(request, this.outputFormat, rendered);
    const limit = Math.min(request.contextLimit ?? this.contextSize, this.contextSize);
    // A prompt that cannot fit is refused before it is tokenized.
    const atLeast = this.promptBound.minTokens(text);
    if (atLeast >= limit) throw new ContextOverflowError(atLeast, limit, true);
    const promptTokens = await this.tokenizePrompt(text);
    if (promptTokens.length === 0) throw new InvalidGenerationError("the prompt is empty and the model has no BOS token to start from", "prompt");
    if (promptTokens.length >= limit) throw new ContextOverflowError(promptTokens.length, limit);
    const vocab = this.spec.summary?.vocabSize ?? Number.POSITIVE_INFINITY;
    for (const id of request.sampling.logitBias?.keys() ?? []) {
      if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new InvalidGenerationError(`logit_bias token id ${id} is outside the vocabulary (0..${vocab - 1})`, "logit_bias");
    }
    if (request.logprobs && (request.logprobs.top < 0 || request.logprobs.top > 20)) throw new InvalidGenerationError("top_logprobs must be between 0 and 20", "top_logprobs");
    const room = limit - promptTokens.length;
    return {
      request,
      promptTokens,
      maxTokens: Math.min(request.maxTokens ?? room, room),
      grammar: plan.grammar === undefined ? undefined : this.parsedGrammar(plan.grammar, plan.grammarParam ?? "grammar"),
      parser: plan.parser,
      renderSpecialTokens: plan.renderSpecialTokens,
    };
  }

  private parsedGrammar(text: string, param: string): NativeGrammar {
    let grammar = this.grammars.get(text);
    if (!grammar) {
      checkGrammarBounds(text, param);
      try {
        grammar = this.native.parseGrammar(text);
      } catch (e) {
        throw new InvalidGenerationError(`llama.cpp could not parse the grammar: ${(e as Error).message}`, param);
      }
      if (this.grammars.size >= 16) this.grammars.delete(this.grammars.keys().next().value!);
      this.grammars.set(text, grammar);
    } else {
      // Most recently used last: the oldest is dropped first.
      this.grammars.delete(text);
      this.grammars.set(text, grammar);
    }
    return grammar;
  }

  /** A sampled token's log-probability and the `top` most likely tokens, from the probe's distribution ([id, p, …], best first). */
  private logprobOf(token: Token, distribution: number[], top: number): TokenLogprob {
    const logOf = (p: number): number => (p > 0 ? Math.log(p) : -9999);
    let p = 0;
    for (let i = 0; i < distribution.length; i += 2) {
      if (distribution[i] === token) {
        p = distribution[i + 1]!;
        break;
      }
    }
    const alternatives: TokenLogprob["top"] = [];
    for (let i = 0; i < Math.min(top, distribution.length / 2); i++) {
      const id = distribution[2 * i]!;
      alternatives.push({ id, ...this.tokenBytes.of(id as Token), logprob: logOf(distribution[2 * i + 1]!) });
    }
    return { id: token, ...this.tokenBytes.of(token), logprob: logOf(p), top: alternatives };
  }

  /**
   * Runs a prepared request on a free slot: waits FIFO for one, reuses its cached prefix, hands
   * token text to `onToken` as it becomes final, and resolves with real counts.
   *
   * A callback rather than an async iterator: each streamed token then costs the main thread one
   * promise hop from the decode loop instead of two async-generator hand-offs, and on a machine
   * whose cores all decode, main-thread time per token is taken from the decode threads.
   */
  generate(prepared: PreparedGeneration, onOutput: OutputSink = () => undefined): Promise<DoneEvent> {
    const run = this.run(prepared, onOutput);
    this.running.add(run);
    const forget = () => void this.running.delete(run);
    run.then(forget, forget);
    return run;
  }

  private async run(prepared: PreparedGeneration, onOutput: OutputSink): Promise<DoneEvent> {
    const { request, promptTokens, maxTokens } = prepared;
    // One signal for every way a request ends early: the client leaving, the time limit, shutdown.
    const deadline = AbortSignal.timeout(this.options.requestTimeoutMs);
    const signal = AbortSignal.any([...(request.signal ? [request.signal] : []), deadline, this.stopping.signal]);
    const queued = performance.now();
    let grant: SlotGrant | undefined;
    try {
      try {
        grant = await this.slots.acquire(promptTokens, signal);
      } catch (e) {
        if (deadline.aborted) throw new RequestTimeoutError(this.options.requestTimeoutMs);
        if (signal.aborted) {
          return { finishReason: "abort", usage: { promptTokens: promptTokens.length, completionTokens: 0, cachedTokens: 0 }, timings: { queueMs: performance.now() - queued, promptMs: 0, generationMs: 0 }, tokenIds: [], output: emptyOutput() };
        }
        throw e;
      }
      const queueMs = performance.now() - queued;
      const started = performance.now();
      const slot = grant.slot;
      // Keep the shared prefix; at least the last prompt token is evaluated to get logits.
      let cachedTokens = Math.min(grant.shared, promptTokens.length - 1);
      if (this.slotStates) cachedTokens = await this.slotStates.prepare(slot, promptTokens, cachedTokens);
      if (cachedTokens < slot.tokens.length) {
        await this.loop.erase(slot.id, cachedTokens);
        slot.tokens.length = cachedTokens;
      }
      const generated: Token[] = [];
      const decoder = new TokenTextDecoder(this.model, promptTokens, prepared.renderSpecialTokens === true);
      const stops = new StopMatcher(request.stop);
      const assembler = new OutputAssembler(onOutput, prepared.parser?.(), request.logprobs !== undefined);
      let firstTokenAt: number | undefined;
      let finishReason: FinishReason = "stop";
      let stoppedByString = false;
      let drafts: Pick<Timings, "drafted" | "accepted"> | undefined;

      if (maxTokens > 0 && !signal.aborted) {
        const samplers: NativeSampler[] = [];
        let sampler: NativeSampler;
        let probe: NativeSampler | undefined;
        try {
          sampler = this.native.createSampler();
          samplers.push(sampler);
          const config = nativeSamplerConfig(request.sampling, promptTokens);
          // The native side reads a present key even when undefined.
          if (prepared.grammar) config.grammarEvaluationState = prepared.grammar.newState();
          sampler.applyConfig(config);
          if (request.logprobs) {
            probe = this.native.createSampler();
            samplers.push(probe);
            probe.applyConfig({ temperature: 0, seed: 0 });
          }
        } catch (e) {
          for (const s of samplers) s.dispose();
          throw e;
        }
        const top = request.logprobs?.top ?? 0;
        const speculation = this.speculation(slot.id);
        const job = new DecodeJob({ sequenceId: slot.id, tokens: promptTokens.slice(cachedTokens), position: cachedTokens, sampler, probe, maxTokens, cache: slot.tokens, speculation });
        const onAbort = () => job.cancel();
        signal.addEventListener("abort", onAbort, { once: true });
        this.loop.start(job);
        try {
          for (let sampled = await job.next(); sampled !== null; sampled = await job.next()) {
            const { token, distribution } = sampled;
            firstTokenAt ??= performance.now();
            generated.push(token);
            if (distribution) assembler.token(this.logprobOf(token, distribution, top));
            const { emit, stopped } = stops.push(decoder.push(token));
            if (emit) assembler.text(emit);
            if (stopped) {
              stoppedByString = true;
              break;
            }
          }
          if (signal.aborted) finishReason = "abort";
          else if (!stoppedByString && job.end === "length") finishReason = "length";
        } finally {
          signal.removeEventListener("abort", onAbort);
          // The step in flight (at most one) finishes before the slot is reused.
          job.cancel();
          await job.settled;
          if (speculation) drafts = { drafted: speculation.drafted, accepted: speculation.accepted };
          for (const s of samplers) s.dispose();
        }
      } else {
        finishReason = signal.aborted ? "abort" : "length";
      }
      // The time limit is an error for every protocol (504 / an error event), not an ending.
      if (deadline.aborted) throw new RequestTimeoutError(this.options.requestTimeoutMs);
      // Release text held back for UTF-8 completion or a possible stop string (not after an abort:
      // nobody is listening).
      if (!stoppedByString && finishReason !== "abort") {
        const last = stops.push(decoder.flush());
        const tail = last.emit + (last.stopped ? "" : stops.flush());
        if (tail) assembler.text(tail);
      }
      const output = finishReason === "abort" ? emptyOutput() : assembler.end();
      if (finishReason === "stop" && output.toolCalls.length > 0) finishReason = "tool_calls";
      const end = performance.now();
      return {
        output,
        finishReason,
        usage: { promptTokens: promptTokens.length, completionTokens: generated.length, cachedTokens },
        timings: { queueMs, promptMs: (firstTokenAt ?? end) - started, generationMs: firstTokenAt === undefined ? 0 : end - firstTokenAt, ...drafts },
        tokenIds: generated,
        ...(finishReason === "stop" && stops.matched !== undefined ? { stopSequence: stops.matched } : {}),
      };
    } finally {
      if (grant) this.slots.release(grant.slot);
    }
  }

  /** How a job on slot `slot` drafts: with the draft model when one is loaded, else by prompt lookup unless off. */
  private speculation(slot: number): Speculation | undefined {
    // A recurrent state cannot drop rejected draft tokens (llama.cpp's server turns drafts off too).
    if (this.model.fileInsights.isRecurrent || this.model.fileInsights.isHybrid) return undefined;
    const bounds = { min: this.options.draftMin, max: this.options.draftMax };
    if (this.draftModel) return draftModelSpeculation(this.draftModel, slot, bounds);
    return this.options.speculative === "off" || this.options.speculative === "draft" ? undefined : promptLookup(bounds);
  }

  /** Runs a prepared request to its end: the whole text and the `done` event. */
  async complete(prepared: PreparedGeneration): Promise<{ text: string; done: DoneEvent }> {
    const done = await this.generate(prepared);
    return { text: done.output.content, done };
  }

  /**
   * Cuts every generation (queued or decoding; each ends as an abort) and resolves once none
   * uses the context any more: their decode steps in flight have finished.
   */
  async stopGenerations(reason = "the server is shutting down"): Promise<void> {
    this.stopping.abort(new Error(reason));
    await Promise.allSettled([...this.running]);
  }

  /** Unloads; a generation still running is cut first (freeing the context under a decode crashes). */
  async dispose(): Promise<void> {
    this.slots.rejectWaiters(new Error(`model "${this.spec.name}" was unloaded`));
    await this.stopGenerations(`model "${this.spec.name}" was unloaded`);
    // Its slots' long prefixes outlive the load (a failed save only means nothing was kept).
    await this.slotStates?.saveAll(this.slots.slots).catch(() => undefined);
    await this.embeddings.dispose();
    await this.context.dispose();
    await this.draftModel?.dispose();
    await this.model.dispose();
    this.options.promptWorker?.forget(this.ggufPath);
  }
}

/** Whether rendering this chat could hold the event loop noticeably (Jinja costs per message and per character). */
function isLargeChat(messages: readonly ChatMessage[]): boolean {
  if (messages.length > OFF_THREAD_MESSAGES) return true;
  let chars = 0;
  for (const m of messages) chars += m.content.length + (m.reasoning?.length ?? 0) + (m.toolCalls?.length ?? 0) * 256;
  return chars >= OFF_THREAD_CHARS;
}
