import { randomBytes } from "node:crypto";
import type { DoneEvent, TokenLogprob, Usage } from "../../engine/types.js";
import type { ResponsesBody } from "./request.js";

/** An id in OpenAI's style: `resp_…`, `msg_…`, `fc_…`, `rs_…`. */
export const itemId = (prefix: "resp" | "msg" | "fc" | "rs"): string => `${prefix}_${randomBytes(16).toString("hex")}`;

/** What the response object repeats of the request, and whether reasoning goes to `summary`. */
export interface ResponseMeta {
  id: string;
  createdAt: number;
  model: string;
  body: ResponsesBody;
  /** `reasoning.summary` asked for: the model's reasoning is returned as the summary (Shimmy has no summariser). */
  reasoningAsSummary: boolean;
  withLogprobs: boolean;
}

export function responseMeta(body: ResponsesBody, model: string, withLogprobs: boolean): ResponseMeta {
  const summary = body.reasoning?.summary ?? body.reasoning?.generate_summary ?? null;
  return { id: itemId("resp"), createdAt: Math.floor(Date.now() / 1000), model, body, reasoningAsSummary: summary !== null, withLogprobs };
}

export type ItemStatus = "in_progress" | "completed" | "incomplete";

/** A log-probability as `output_text.logprobs` and the text delta events carry it. */
export function logprobsJson(entries: TokenLogprob[]) {
  return entries.map((e) => ({ token: e.text, bytes: e.bytes, logprob: e.logprob, top_logprobs: e.top.map((t) => ({ token: t.text, bytes: t.bytes, logprob: t.logprob })) }));
}

export const outputTextPart = (text: string, logprobs: object[] | undefined) => ({ type: "output_text", text, annotations: [], ...(logprobs ? { logprobs } : {}) });

export const messageItem = (id: string, status: ItemStatus, content: object[]) => ({ id, type: "message", status, role: "assistant", content });

export const functionCallItem = (id: string, callId: string, name: string, args: string, status: ItemStatus) => ({ id, type: "function_call", status, call_id: callId, name, arguments: args });

/** The model's `<think>` text: as the summary when one was asked for, else as `reasoning_text` content (as OpenAI returns open-weight models' reasoning). */
export function reasoningItem(id: string, text: string, asSummary: boolean) {
  return asSummary ? { id, type: "reasoning", summary: [{ type: "summary_text", text }] } : { id, type: "reasoning", summary: [], content: [{ type: "reasoning_text", text }] };
}

/** Reasoning tokens are not counted separately by the engine, so `reasoning_tokens` is 0 (never estimated). */
function usageJson(u: Usage) {
  return {
    input_tokens: u.promptTokens,
    input_tokens_details: { cached_tokens: u.cachedTokens },
    output_tokens: u.completionTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: u.promptTokens + u.completionTokens,
  };
}

/** `output_text`: the text of every output_text part, as the SDKs compute it (sent for plain HTTP clients). */
function outputText(output: object[]): string {
  return output
    .flatMap((item) => ((item as { type: string }).type === "message" ? (item as { content: { text: string }[] }).content : []))
    .map((part) => part.text)
    .join("");
}

/** The response object: `in_progress` (no output yet), or finished with its output items and usage. */
export function responseObject(m: ResponseMeta, output: object[], done?: DoneEvent) {
  const b = m.body;
  const incomplete = done?.finishReason === "length";
  return {
    id: m.id,
    object: "response",
    created_at: m.createdAt,
    status: done ? (incomplete ? "incomplete" : "completed") : "in_progress",
    ...(done && !incomplete ? { completed_at: Math.floor(Date.now() / 1000) } : {}),
    background: false,
    error: null,
    incomplete_details: incomplete ? { reason: "max_output_tokens" } : null,
    instructions: b.instructions ?? null,
    max_output_tokens: b.max_output_tokens ?? null,
    model: m.model,
    output,
    output_text: outputText(output),
    parallel_tool_calls: b.parallel_tool_calls ?? true,
    previous_response_id: null,
    reasoning: { effort: b.reasoning?.effort ?? null, summary: b.reasoning?.summary ?? b.reasoning?.generate_summary ?? null },
    service_tier: "default",
    temperature: b.temperature ?? 1,
    text: { format: b.text?.format ?? { type: "text" }, verbosity: b.text?.verbosity ?? "medium" },
    tool_choice: b.tool_choice ?? "auto",
    // Calls are always grammar-enforced against `parameters`, so every function tool is strict here.
    tools: (b.tools ?? []).map((t) => ({ type: "function", name: t.name, description: t.description ?? null, parameters: t.parameters ?? null, strict: t.strict ?? true })),
    top_logprobs: b.top_logprobs ?? 0,
    top_p: b.top_p ?? 1,
    truncation: b.truncation ?? "disabled",
    usage: done ? usageJson(done.usage) : null,
    ...(b.user !== undefined ? { user: b.user } : {}),
    metadata: b.metadata ?? {},
    prompt_cache_key: b.prompt_cache_key ?? null,
    safety_identifier: b.safety_identifier ?? null,
  };
}

/** One finished generation as its output items: reasoning, the message (unless only calls), the calls. */
export function outputItems(m: ResponseMeta, done: DoneEvent): object[] {
  const { output } = done;
  const items: object[] = [];
  if (output.reasoning) items.push(reasoningItem(itemId("rs"), output.reasoning, m.reasoningAsSummary));
  if (output.content !== "" || output.toolCalls.length === 0) {
    const logprobs = m.withLogprobs ? logprobsJson(output.logprobs ?? []) : undefined;
    items.push(messageItem(itemId("msg"), done.finishReason === "length" ? "incomplete" : "completed", [outputTextPart(output.content, logprobs)]));
  }
  for (const c of output.toolCalls) items.push(functionCallItem(itemId("fc"), c.id, c.name, c.arguments, "completed"));
  return items;
}
