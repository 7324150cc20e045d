/** The engine's internal types (DESIGN.md "the spine"): protocols translate to and from these. */

import type { ToolChoice, ToolSpec } from "./chat-format/types.js";

export type ChatRole = "system" | "user" | "assistant" | "tool";

/** A tool call the assistant made earlier in the conversation; arguments as an object (HF templates render them). */
export interface HistoryToolCall {
  id: string;
  name: string;
  arguments: unknown;
}

export interface ChatMessage {
  role: ChatRole;
  content: string;
  name?: string;
  toolCallId?: string;
  /** Assistant messages: the calls it made. */
  toolCalls?: HistoryToolCall[];
  /** Assistant messages: reasoning it wrote before the answer (templates that render it get it). */
  reasoning?: string;
}

export type { ToolChoice, ToolSpec } from "./chat-format/types.js";

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

/** What the output must match: free text (absent), any JSON object, a JSON Schema, or a raw GBNF grammar. */
export type OutputConstraint = { kind: "json_object" } | { kind: "json_schema"; schema: unknown } | { kind: "gbnf"; grammar: string };

export interface GenerationRequest {
  model: string;
  input: GenerationInput;
  sampling: SamplingOptions;
  /** Functions the model may call (chat input only); rendered by the template or described in the system prompt. */
  tools?: ToolSpec[];
  /** Defaults to auto when tools are given. */
  toolChoice?: ToolChoice;
  /** Several calls in one turn (default true). */
  parallelToolCalls?: boolean;
  constraint?: OutputConstraint;
  /**
   * `<think>` reasoning: `separate` (default) splits it from the answer where the model reasons,
   * `inline` leaves it in the answer, `require` splits it and refuses a model that does not reason.
   */
  reasoning?: "separate" | "inline" | "require";
  /** Extra variables for the chat template (chat_template_kwargs, e.g. enable_thinking). */
  templateVariables?: Record<string, unknown>;
  /** Log-probabilities of each sampled token and of this many alternatives (0–20). */
  logprobs?: { top: number };
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
export type FinishReason = "stop" | "length" | "tool_calls" | "abort";

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
  /** With speculative decoding: draft tokens the model checked, and how many of them it sampled too. */
  drafted?: number;
  accepted?: number;
}

/** A sampled token's log-probability (natural log, of the model's distribution before sampling filters). */
export interface TokenLogprob {
  id: number;
  /** The token's text; bytes of an incomplete UTF-8 character are in `bytes`. */
  text: string;
  bytes: number[];
  logprob: number;
  /** The most likely tokens at that step, best first. */
  top: { id: number; text: string; bytes: number[]; logprob: number }[];
}

/** A piece of a tool call as it streams: the first piece of call `index` has its id and name. */
export interface ToolCallDelta {
  index: number;
  id?: string;
  name?: string;
  arguments?: string;
}

/** What a generation produced since the last delta, already split into answer, reasoning and tool calls. */
export interface OutputDelta {
  content?: string;
  reasoning?: string;
  toolCalls?: ToolCallDelta[];
  /** The tokens behind this delta (only when log-probabilities were asked for). */
  logprobs?: TokenLogprob[];
}

export interface ToolCall {
  id: string;
  name: string;
  /** JSON object text. */
  arguments: string;
}

/** The whole output, parsed. */
export interface GenerationOutput {
  content: string;
  reasoning: string;
  toolCalls: ToolCall[];
  logprobs?: TokenLogprob[];
}

/** How a generation ended, with real counts and timings. */
export interface DoneEvent {
  finishReason: FinishReason;
  usage: Usage;
  timings: Timings;
  tokenIds: number[];
  output: GenerationOutput;
  /** The stop string that ended the generation, when one did (the API reports which). */
  stopSequence?: string;
}

/** Receives the output as it becomes final. */
export type OutputSink = (delta: OutputDelta) => void;
