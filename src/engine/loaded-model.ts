import type { Llama, LlamaContext, LlamaModel, Token, TokenBias } from "node-llama-cpp";
import type { Config } from "../config/config.js";
import type { ModelSpec } from "../discovery/types.js";
import { type ChatTemplate, JinjaChatTemplate, TranscriptChatTemplate } from "./chat-template.js";
import { sequenceOrderedBatches } from "./batch-order.js";
import { ContextGate } from "./context-gate.js";
import { loadNodeLlamaCpp } from "./llama.js";
import { ContextOverflowError, InvalidGenerationError, RequestTimeoutError } from "./errors.js";
import { type Slot, SlotPool } from "./slots.js";
import { StopMatcher, TokenTextDecoder } from "./text-stream.js";
import { applyThreadPlan } from "./thread-plan.js";
import type { DoneEvent, FinishReason, GenerationEvent, GenerationRequest, SamplingOptions } from "./types.js";

/** The Config settings a load uses (documented on Config). */
export type LoadOptions = Pick<Config, "ctxSize" | "ctxCap" | "threads" | "batchThreads" | "batchSize" | "parallel" | "maxQueue" | "requestTimeoutMs" | "flashAttention">;

/** A request after tokenization and checks: everything that can fail before streaming starts. */
export interface PreparedGeneration {
  request: GenerationRequest;
  promptTokens: Token[];
  maxTokens: number;
}

// Penalties look back this many tokens, like llama-server's repeat_last_n default.
const PENALTY_WINDOW = 64;

/** A model with its context and slots, ready to generate. */
export class LoadedModel {
  readonly slots: SlotPool;
  private readonly gate = new ContextGate();
  /** Requests holding this model (queued or generating); the pool never unloads it while > 0. */
  pins = 0;
  /** When a request last took or let go of it (set by the pool; least recent unloads first). */
  lastUsed = Date.now();

  private constructor(
    readonly spec: ModelSpec,
    readonly model: LlamaModel,
    readonly context: LlamaContext,
    readonly contextSize: number,
    readonly template: ChatTemplate,
    readonly loadMs: number,
    private readonly options: LoadOptions,
    private readonly TokenBiasClass: typeof TokenBias,
  ) {
    const sequences = Array.from({ length: context.totalSequences }, () => context.getSequence());
    this.slots = new SlotPool(sequences, spec.name, options.maxQueue);
  }

  /** Bytes this model holds: weights plus its context (KV cache and compute buffers). */
  get memoryBytes(): number {
    return this.model.size + this.context.stateSize;
  }

  /** Loads `ggufPath` (the spec's file, or its converted GGUF) with one context of `parallel` slots. */
  static async load(llama: Llama, spec: ModelSpec, ggufPath: string, options: LoadOptions): Promise<LoadedModel> {
    const started = performance.now();
    const model = await llama.loadModel({ modelPath: ggufPath });
    try {
      const contextSize = options.ctxSize ?? Math.min(model.trainContextSize, options.ctxCap);
      // The batch strategy needs the context and the slots, which exist only after createContext.
      const ref: { context?: LlamaContext; slots?: SlotPool } = {};
      const context = await model.createContext({
        contextSize,
        sequences: options.parallel,
        batching: { itemPrioritizationStrategy: sequenceOrderedBatches(() => ref.context, () => ref.slots?.busyCount ?? 0) },
        // node-llama-cpp sets one count per context; applyThreadPlan switches per batch.
        threads: options.batchThreads,
        batchSize: options.batchSize,
        flashAttention: options.flashAttention && model.flashAttentionSupported,
        lora: spec.lora ? { adapters: [{ filePath: spec.lora }] } : undefined,
        // Slot size is a promise to clients (/v1/models); never shrink it silently.
        failedCreationRemedy: false,
      });
      ref.context = context;
      applyThreadPlan(context, { threads: options.threads, batchThreads: options.batchThreads });
      const source = model.fileInfo.metadata?.tokenizer?.chat_template;
      const tokenText = (t: Token | null): string => (t === null ? "" : model.detokenize([t], true));
      const template =
        typeof source === "string"
          ? await JinjaChatTemplate.create(source, { bosToken: tokenText(model.tokens.bos), eosToken: tokenText(model.tokens.eos) })
          : new TranscriptChatTemplate();
      const { TokenBias } = await loadNodeLlamaCpp();
      const loaded = new LoadedModel(spec, model, context, contextSize, template, performance.now() - started, options, TokenBias);
      ref.slots = loaded.slots;
      return loaded;
    } catch (e) {
      await model.dispose();
      throw e;
    }
  }

  /** Prompt text → tokens, parsing special tokens and adding BOS where the model expects it. */
  tokenizePrompt(text: string): Token[] {
    const tokens = this.model.tokenize(text, true);
    const bos = this.model.tokens.bos;
    if (bos !== null && this.model.tokens.shouldPrependBosToken && tokens[0] !== bos) tokens.unshift(bos);
    return tokens;
  }

  renderChat(request: GenerationRequest): string {
    if (request.input.kind !== "chat") throw new Error("not a chat request");
    try {
      return this.template.render(request.input.messages);
    } catch (e) {
      // Templates reject conversations they do not support (roles out of order, a system
      // message the model has no place for): the request is at fault, not the server.
      throw new InvalidGenerationError(`the model's chat template rejected these messages: ${(e as Error).message}`, "messages");
    }
  }

  /** Tokenizes and validates; throws typed errors before any response is started. */
  prepare(request: GenerationRequest): PreparedGeneration {
    const text = request.input.kind === "chat" ? this.renderChat(request) : request.input.text;
    const promptTokens = this.tokenizePrompt(text);
    if (promptTokens.length === 0) throw new InvalidGenerationError("the prompt is empty and the model has no BOS token to start from", "prompt");
    if (promptTokens.length >= this.contextSize) throw new ContextOverflowError(promptTokens.length, this.contextSize);
    const vocab = this.spec.summary?.vocabSize ?? Number.POSITIVE_INFINITY;
    for (const id of request.sampling.logitBias?.keys() ?? []) {
      if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new InvalidGenerationError(`logit_bias token id ${id} is outside the vocabulary (0..${vocab - 1})`, "logit_bias");
    }
    const room = this.contextSize - promptTokens.length;
    return { request, promptTokens, maxTokens: Math.min(request.maxTokens ?? room, room) };
  }

  private samplerOptions(s: SamplingOptions, history: () => Token[]) {
    const penalties = s.presencePenalty || s.frequencyPenalty || (s.repeatPenalty !== undefined && s.repeatPenalty !== 1);
    let tokenBias: TokenBias | undefined;
    if (s.logitBias && s.logitBias.size > 0) {
      tokenBias = new this.TokenBiasClass(this.model.tokenizer);
      for (const [id, bias] of s.logitBias) tokenBias.set(id as Token, bias <= -100 ? "never" : { logit: bias });
    }
    return {
      temperature: s.temperature,
      // OpenAI semantics: no top-k unless asked, top_p 1 and min_p 0 unless asked. "No top-k" is
      // null, not 0: node-llama-cpp 3.21.1 turns 0 into k = vocabulary size, a full sort of the
      // vocabulary every token (measured +0.05 ms per token at 32k tokens, more for 150k), while
      // null leaves the top-k sampler out of the chain (its default for undefined would be 40).
      topK: s.topK ?? (null as unknown as undefined),
      topP: s.topP ?? 1,
      minP: s.minP ?? 0,
      seed: s.seed,
      repeatPenalty: penalties
        ? {
            punishTokens: history,
            maxPunishTokens: PENALTY_WINDOW,
            penalty: s.repeatPenalty ?? 1,
            frequencyPenalty: s.frequencyPenalty || undefined,
            presencePenalty: s.presencePenalty || undefined,
          }
        : undefined,
      tokenBias,
    };
  }

  /**
   * Runs a prepared request on a free slot: waits FIFO for one, reuses its cached prefix,
   * streams token text and ends with one `done` event carrying real counts.
   */
  async *generate(prepared: PreparedGeneration): AsyncGenerator<GenerationEvent> {
    const { request, promptTokens, maxTokens } = prepared;
    // One signal for both ways a request ends early: the client leaving, or the time limit.
    const deadline = AbortSignal.timeout(this.options.requestTimeoutMs);
    const signal = request.signal ? AbortSignal.any([request.signal, deadline]) : deadline;
    const queued = performance.now();
    let slot: Slot | undefined;
    try {
      try {
        slot = await this.slots.acquire(promptTokens, signal);
      } catch (e) {
        if (deadline.aborted) throw new RequestTimeoutError(this.options.requestTimeoutMs);
        if (signal.aborted) {
          yield { type: "done", finishReason: "abort", usage: { promptTokens: promptTokens.length, completionTokens: 0, cachedTokens: 0 }, timings: { queueMs: performance.now() - queued, promptMs: 0, generationMs: 0 }, tokenIds: [] };
          return;
        }
        throw e;
      }
      const queueMs = performance.now() - queued;
      const sequence = slot.sequence;
      // Keep the shared prefix; at least the last prompt token is evaluated to get logits.
      const shared = sequence.compareContextTokens(promptTokens).firstDifferentIndex;
      const cachedTokens = Math.min(shared, promptTokens.length - 1);
      if (cachedTokens < sequence.nextTokenIndex) {
        await this.gate.run(() => sequence.eraseContextTokenRanges([{ start: cachedTokens, end: sequence.nextTokenIndex }]));
      }
      const generated: Token[] = [];
      const decoder = new TokenTextDecoder(this.model, promptTokens);
      const stops = new StopMatcher(request.stop);
      const started = performance.now();
      let firstTokenAt: number | undefined;
      let finishReason: FinishReason = "stop";
      let stoppedByString = false;

      if (maxTokens > 0 && !signal.aborted) {
        // Penalties look at the last PENALTY_WINDOW tokens of prompt + output.
        const options = this.samplerOptions(request.sampling, () =>
          generated.length >= PENALTY_WINDOW ? generated.slice(-PENALTY_WINDOW) : [...promptTokens.slice(-(PENALTY_WINDOW - generated.length)), ...generated],
        );
        const iterator = sequence.evaluate(promptTokens.slice(cachedTokens), options);
        let pending: Promise<IteratorResult<Token>> | undefined = iterator.next();
        try {
          while (pending) {
            const step = await pending;
            pending = undefined;
            if (step.done) break; // the model produced an end-of-generation token
            const token = step.value;
            firstTokenAt ??= performance.now();
            generated.push(token);
            const { emit, stopped } = stops.push(decoder.push(token));
            let more = false;
            if (stopped) stoppedByString = true;
            else if (signal.aborted) finishReason = "abort";
            else if (generated.length >= maxTokens) finishReason = "length";
            else more = true;
            // Ask for the next token before handing this one on: the slot's next decode is then
            // queued at once and joins the other slots' batch instead of trailing into the next.
            // Not while another slot waits to erase its cache (see ContextGate).
            if (more && this.gate.open) pending = iterator.next();
            if (emit) yield { type: "token", text: emit, id: token };
            if (more && !pending) {
              await this.gate.wait();
              pending = iterator.next();
            }
            if (pending && signal.aborted) {
              finishReason = "abort";
              break;
            }
          }
        } finally {
          // A step already requested finishes (at most one token) before the sequence is released.
          if (pending) await pending.catch(() => undefined);
          await iterator.return(undefined);
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
        if (tail) yield { type: "token", text: tail, id: generated[generated.length - 1] ?? -1 };
      }
      const end = performance.now();
      yield {
        type: "done",
        finishReason,
        usage: { promptTokens: promptTokens.length, completionTokens: generated.length, cachedTokens },
        timings: { queueMs, promptMs: (firstTokenAt ?? end) - started, generationMs: firstTokenAt === undefined ? 0 : end - firstTokenAt },
        tokenIds: generated,
      };
    } finally {
      if (slot) this.slots.release(slot);
    }
  }

  /** Runs a prepared request to its end: the whole text and the `done` event. */
  async complete(prepared: PreparedGeneration): Promise<{ text: string; done: DoneEvent }> {
    let text = "";
    for await (const ev of this.generate(prepared)) {
      if (ev.type === "token") text += ev.text;
      else return { text, done: ev };
    }
    throw new Error("generation ended without a done event");
  }

  async dispose(): Promise<void> {
    this.slots.rejectWaiters(new Error(`model "${this.spec.name}" was unloaded`));
    await this.context.dispose();
    await this.model.dispose();
  }
}
