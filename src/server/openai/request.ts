import type { ChatMessage, GenerationRequest, SamplingOptions } from "../../engine/types.js";
import { invalidParam } from "./errors.js";

/** Body fields shared by chat and text completions, as validated by schemas.ts. */
export interface SamplingBody {
  model: string;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  repeat_penalty?: number;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  seed?: number | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  logit_bias?: Record<string, number> | null;
  stop?: string | string[] | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  user?: string;
  n?: number | null;
  logprobs?: boolean | number | null;
  top_logprobs?: number | null;
}

export interface ContentPart {
  type: string;
  text?: string;
}

export interface ChatBody extends SamplingBody {
  messages: { role: string; content?: string | ContentPart[] | null; name?: string; tool_call_id?: string; tool_calls?: unknown[] }[];
  tools?: unknown[] | null;
  tool_choice?: unknown;
  parallel_tool_calls?: boolean | null;
  functions?: unknown[] | null;
  function_call?: unknown;
  response_format?: { type?: string } | null;
  modalities?: string[] | null;
  audio?: unknown;
  prediction?: unknown;
  reasoning_effort?: unknown;
  web_search_options?: unknown;
  store?: boolean | null;
  metadata?: Record<string, unknown> | null;
  service_tier?: string | null;
}

export interface CompletionBody extends SamplingBody {
  prompt: string | string[];
  echo?: boolean | null;
  suffix?: string | null;
  best_of?: number | null;
}

const notYet = (param: string, what = param): never => {
  throw invalidParam(param, `'${what}' is not supported by Shimmy yet; remove it from the request.`, "unsupported_parameter");
};

/** Refuses known parameters whose non-default values Shimmy cannot honour (never ignore silently). */
function refuseUnsupportedSampling(body: SamplingBody): void {
  if (body.n != null && body.n !== 1) notYet("n", "n > 1");
  if (body.logprobs != null && body.logprobs !== false && body.logprobs !== 0) notYet("logprobs");
  if (body.top_logprobs != null) notYet("top_logprobs");
  if (body.stream_options && !body.stream) throw invalidParam("stream_options", "stream_options is only allowed when stream is true.");
}

export function refuseUnsupportedChat(body: ChatBody): void {
  refuseUnsupportedSampling(body);
  if (body.tools != null && body.tools.length > 0) notYet("tools");
  if (body.functions != null && body.functions.length > 0) notYet("functions");
  if (body.function_call != null && body.function_call !== "none") notYet("function_call");
  if (body.tool_choice != null && body.tool_choice !== "none" && !(body.tool_choice === "auto" && !body.tools?.length)) notYet("tool_choice");
  if (body.response_format != null && body.response_format.type !== "text") notYet("response_format", `response_format type "${body.response_format.type}"`);
  if (body.modalities != null && body.modalities.some((m) => m !== "text")) notYet("modalities", "modalities other than text");
  for (const p of ["audio", "prediction", "reasoning_effort", "web_search_options"] as const) if (body[p] != null) notYet(p);
  if (body.store === true) notYet("store", "store: true");
}

export function refuseUnsupportedCompletion(body: CompletionBody): void {
  refuseUnsupportedSampling(body);
  if (body.suffix != null && body.suffix !== "") notYet("suffix");
  if (body.best_of != null && body.best_of !== 1) notYet("best_of", "best_of > 1");
}

export function samplingFrom(body: SamplingBody): SamplingOptions {
  let logitBias: Map<number, number> | undefined;
  if (body.logit_bias) logitBias = new Map(Object.entries(body.logit_bias).map(([k, v]) => [Number(k), v]));
  return {
    // OpenAI's default temperature is 1.
    temperature: body.temperature ?? 1,
    topP: body.top_p,
    topK: body.top_k,
    minP: body.min_p,
    seed: body.seed ?? undefined,
    presencePenalty: body.presence_penalty ?? undefined,
    frequencyPenalty: body.frequency_penalty ?? undefined,
    repeatPenalty: body.repeat_penalty,
    logitBias,
  };
}

export function stopFrom(stop: string | string[] | null | undefined): string[] {
  if (stop == null) return [];
  return typeof stop === "string" ? [stop] : stop;
}

/** Chat messages → engine messages. Non-text content parts are refused, never dropped. */
export function messagesFrom(body: ChatBody, modelName: string): ChatMessage[] {
  return body.messages.map((m, i) => {
    let content = "";
    if (typeof m.content === "string") content = m.content;
    else if (Array.isArray(m.content)) {
      content = m.content
        .map((part, j) => {
          if (part.type === "text" && typeof part.text === "string") return part.text;
          if (part.type === "text") throw invalidParam(`messages[${i}].content[${j}].text`, "A text content part needs a string 'text'.");
          const kind = part.type.replace(/_url$/, "").replace(/^input_/, "");
          throw invalidParam(`messages[${i}].content[${j}]`, `Model "${modelName}" does not support ${kind} input; only text content parts are accepted.`, "unsupported_content");
        })
        .join("");
    } else if (m.role !== "assistant") {
      throw invalidParam(`messages[${i}].content`, `Messages with role '${m.role}' need content.`);
    }
    const role = m.role === "developer" ? "system" : (m.role as ChatMessage["role"]);
    return { role, content, name: m.name, toolCallId: m.tool_call_id };
  });
}

export function maxTokensFrom(body: SamplingBody): number | undefined {
  return body.max_completion_tokens ?? body.max_tokens ?? undefined;
}

export type BaseRequest = Omit<GenerationRequest, "input">;
