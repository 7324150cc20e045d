/** The engine's internal types (DESIGN.md "the spine"): protocols translate to and from these. */

export type ChatRole = "system" | "user" | "assistant" | "tool";

export interface ChatMessage {
  role: ChatRole;
  content: string;
  name?: string;
  toolCallId?: string;
}

export interface SamplingOptions {
  /** 0 = greedy. */
  temperature: number;
  topP?: number;
  topK?: number;
  minP?: number;
  seed?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  /** Multiplicative repeat penalty (llama.cpp's repeat_penalty); 1 = off. */
  repeatPenalty?: number;
  /** Token id → additive logit bias; -100 bans the token (OpenAI semantics). */
  logitBias?: Map<number, number>;
}

export type GenerationInput =
  | { kind: "chat"; messages: ChatMessage[] }
  | { kind: "text"; text: string };

export interface GenerationRequest {
  model: string;
  input: GenerationInput;
  sampling: SamplingOptions;
  /** Upper bound on generated tokens; the context end bounds it too. */
  maxTokens?: number;
  stop: string[];
  /**
   * The most tokens prompt and generation may fill together (Ollama's num_ctx). Capped at the
   * model's context per slot, which is the limit when unset: a slot never grows per request (as
   * Ollama caps num_ctx at what the model was trained for).
   */
  contextLimit?: number;
  signal?: AbortSignal;
}

/** `abort`: the client went away. (Running past the time limit throws RequestTimeoutError.) */
export type FinishReason = "stop" | "length" | "abort";

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens whose KV state was reused rather than evaluated. */
  cachedTokens: number;
}

export interface Timings {
  /** Waiting for a free slot. */
  queueMs: number;
  /** Evaluating the (uncached) prompt, up to the first sampled token. */
  promptMs: number;
  /** From the first sampled token to the end. */
  generationMs: number;
}

/** How a generation ended, with real counts and timings. */
export interface DoneEvent {
  finishReason: FinishReason;
  usage: Usage;
  timings: Timings;
  tokenIds: number[];
}

/** Receives generated text as it becomes final; `id` is the token that completed it. */
export type TokenSink = (text: string, id: number) => void;
