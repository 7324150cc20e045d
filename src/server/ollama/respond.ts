import type { DoneEvent, OutputDelta, TokenLogprob, ToolCall } from "../../engine/types.js";
import type { ServerContext } from "../context.js";
import type { GenerationTranslator } from "../generation.js";
import { toOllamaError } from "./errors.js";

/** How a route puts its output in its objects: chat `{message: {…}}`, generate `{response, thinking}`. */
export type OutputFields = (out: { content: string; thinking?: string; toolCalls?: ToolCall[] }) => object;

function toolCallJson(c: ToolCall) {
  let args: unknown = {};
  try {
    args = JSON.parse(c.arguments);
  } catch {
    // The parser only completes calls whose arguments are JSON; keep the text if one is not.
    args = c.arguments;
  }
  return { function: { name: c.name, arguments: args } };
}

export const chatFields: OutputFields = ({ content, thinking, toolCalls }) => ({
  message: { role: "assistant", content, ...(thinking ? { thinking } : {}), ...(toolCalls?.length ? { tool_calls: toolCalls.map(toolCallJson) } : {}) },
});
export const generateFields: OutputFields = ({ content, thinking }) => ({ response: content, ...(thinking ? { thinking } : {}) });

/** Milliseconds (performance.now) → Ollama's nanoseconds. */
/** Milliseconds → Ollama's nanosecond durations. */
export const ns = (ms: number): number => Math.round(ms * 1e6);

const head = (model: string) => ({ model, created_at: new Date().toISOString() });

function logprobsJson(tokens: TokenLogprob[]) {
  return tokens.map((t) => ({ token: t.text, logprob: t.logprob, bytes: t.bytes, top_logprobs: t.top.map((a) => ({ token: a.text, logprob: a.logprob, bytes: a.bytes })) }));
}

/**
 * The closing object's measurements. prompt_eval_count is the whole prompt, as Ollama documents
 * it (clients sum it into usage); prompt_eval_duration covers only the part evaluated, since a
 * reused prefix costs nothing. load_duration is the time this request waited for the model to be
 * loaded (0 when it already was).
 */
function closing(done: DoneEvent, startedMs: number, loadMs: number) {
  return {
    done: true,
    done_reason: done.finishReason === "length" ? "length" : "stop",
    total_duration: ns(performance.now() - startedMs),
    load_duration: ns(loadMs),
    prompt_eval_count: done.usage.promptTokens,
    prompt_eval_duration: ns(done.timings.promptMs),
    eval_count: done.usage.completionTokens,
    eval_duration: ns(done.timings.generationMs),
  };
}

/**
 * Ollama's answer: a single object, or NDJSON lines ending in one with `done: true` and the
 * measurements; an error after the first line is one more line, `{"error": "…"}`. Tool calls
 * arrive whole, as Ollama sends them: one line once the model has finished them.
 */
export function ollamaTranslator(model: string, fields: OutputFields, startedMs: number, loadMs: number, options: { thinking: boolean; logprobs: boolean }): GenerationTranslator {
  const thinking = (text: string | undefined) => (options.thinking ? text : undefined);
  return {
    delta: (_choice, d: OutputDelta) => {
      if (d.content === undefined && d.reasoning === undefined && !d.logprobs) return [];
      if (d.content === undefined && !thinking(d.reasoning) && !d.logprobs) return [];
      return [{ ...head(model), ...fields({ content: d.content ?? "", thinking: thinking(d.reasoning) }), ...(options.logprobs && d.logprobs ? { logprobs: logprobsJson(d.logprobs) } : {}), done: false }];
    },
    finish: (_choice, done) => (done.output.toolCalls.length > 0 ? [{ ...head(model), ...fields({ content: "", toolCalls: done.output.toolCalls }), done: false }] : []),
    closing: ([done]) => [{ ...head(model), ...fields({ content: "" }), ...closing(done!, startedMs, loadMs) }],
    error: (e, requestId) => toOllamaError(e, requestId).body,
    full: ([done]) => ({
      ...head(model),
      ...fields({ content: done!.output.content, thinking: thinking(done!.output.reasoning), toolCalls: done!.output.toolCalls }),
      ...(options.logprobs ? { logprobs: logprobsJson(done!.output.logprobs ?? []) } : {}),
      ...closing(done!, startedMs, loadMs),
    }),
  };
}

/**
 * An empty prompt or message list loads the model and answers `done_reason: "load"`; with
 * keep_alive 0 it unloads it instead (`"unload"`) — at once if idle, else when its last request
 * ends. Ollama answers these with one object even when streaming.
 */
export async function loadOrUnload(ctx: ServerContext, model: string, keepAliveMs: number | undefined, fields: OutputFields): Promise<object> {
  if (keepAliveMs === 0) {
    await ctx.pool.unloadWhenIdle(model);
    return { ...head(model), ...fields({ content: "" }), done: true, done_reason: "unload" };
  }
  await ctx.pool.use(model, async () => undefined, keepAliveMs);
  return { ...head(model), ...fields({ content: "" }), done: true, done_reason: "load" };
}
