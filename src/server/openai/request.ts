import type { ChatMessage, GenerationRequest, HistoryToolCall, OutputConstraint, SamplingOptions, ToolChoice, ToolSpec } from "../../engine/types.js";
import { invalidParam } from "../errors.js";
import { type SamplingFields, samplingFromFields } from "../sampling-fields.js";

/** Body fields shared by chat and text completions, as validated by schemas.ts (`null` = unset). */
export interface SamplingBody extends SamplingFields {
  model: string;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  n_predict?: number | null;
  stop?: string | string[] | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean | null } | null;
  n?: number | null;
  grammar?: string | null;
  json_schema?: object | boolean | null;
  samplers?: string[] | string | null;
  ignore_eos?: boolean | null;
  n_probs?: number | null;
  typical_p?: number | null;
  mirostat?: number | null;
  dry_multiplier?: number | null;
  xtc_probability?: number | null;
}

export interface ContentPart {
  type: string;
  text?: string;
}

export interface WireToolCall {
  id?: string;
  type?: "function";
  function: { name: string; arguments?: string | object | null };
}

export interface WireMessage {
  role: string;
  content?: string | ContentPart[] | null;
  name?: string | null;
  tool_call_id?: string | null;
  tool_calls?: WireToolCall[] | null;
  function_call?: { name?: string; arguments?: string } | null;
  reasoning_content?: string | null;
}

export interface WireTool {
  type: string;
  function?: { name: string; description?: string | null; parameters?: object | null; strict?: boolean | null };
}

export interface ChatBody extends SamplingBody {
  messages: WireMessage[];
  logprobs?: boolean | null;
  top_logprobs?: number | null;
  tools?: WireTool[] | null;
  tool_choice?: unknown;
  parallel_tool_calls?: boolean | null;
  functions?: unknown[] | null;
  function_call?: unknown;
  response_format?: { type: string; json_schema?: { name?: string; schema?: unknown; strict?: boolean | null }; schema?: unknown } | null;
  chat_template_kwargs?: Record<string, unknown> | null;
  reasoning_effort?: string | null;
  reasoning_format?: string | null;
  modalities?: string[] | null;
  audio?: unknown;
  prediction?: unknown;
  web_search_options?: unknown;
}

export interface CompletionBody extends SamplingBody {
  prompt: string | string[];
  echo?: boolean | null;
  suffix?: string | null;
  best_of?: number | null;
  logprobs?: number | boolean | null;
}

/** Fields clients send that do not change the answer here (docs/api.md): accepted and ignored. */
export const IGNORED_FIELDS = ["user", "metadata", "store", "service_tier", "prompt_cache_key", "safety_identifier", "verbosity", "cache_prompt", "id_slot", "timings_per_token", "return_progress"] as const;

const notYet = (param: string, what = param): never => {
  throw invalidParam(param, `'${what}' is not supported by Shimmy yet; remove it from the request.`, "unsupported_parameter");
};

/** Shimmy's sampler chain order (llama-server's names); a `samplers` list in another order would change the answer. */
const SAMPLER_ORDER = ["penalties", "top_k", "top_p", "min_p", "temperature"];

/** Refuses values Shimmy cannot honour and that would change the answer (never ignore those silently). */
function refuseUnsupportedSampling(body: SamplingBody): void {
  if (body.stream_options && !body.stream) throw invalidParam("stream_options", "stream_options is only allowed when stream is true.");
  if (body.ignore_eos) notYet("ignore_eos", "ignore_eos: true");
  if (body.n_probs) throw invalidParam("n_probs", "'n_probs' is not supported; use 'logprobs' and 'top_logprobs'.", "unsupported_parameter");
  if (body.typical_p != null && body.typical_p !== 1) notYet("typical_p");
  if (body.mirostat) notYet("mirostat");
  if (body.dry_multiplier) notYet("dry_multiplier");
  if (body.xtc_probability) notYet("xtc_probability");
  if (body.samplers != null) {
    const names = (typeof body.samplers === "string" ? body.samplers.split(";") : body.samplers).map((s) => s.replace(/-/g, "_"));
    const ours = names.filter((s) => SAMPLER_ORDER.includes(s)).map((s) => SAMPLER_ORDER.indexOf(s));
    if (ours.some((v, i) => i > 0 && v < ours[i - 1]!)) throw invalidParam("samplers", `Shimmy samples in the order ${SAMPLER_ORDER.join(";")}; another order is not supported.`, "unsupported_parameter");
  }
  const formats = [body.grammar != null && "grammar", body.json_schema != null && "json_schema", "response_format" in body && (body as ChatBody).response_format != null && (body as ChatBody).response_format!.type !== "text" && "response_format"].filter(Boolean);
  if (formats.length > 1) throw invalidParam(formats[1] as string, `Send one of 'grammar', 'json_schema' or 'response_format', not ${formats.join(" and ")}.`);
}

export function refuseUnsupportedChat(body: ChatBody): void {
  refuseUnsupportedSampling(body);
  if (body.functions != null && body.functions.length > 0) throw invalidParam("functions", "'functions' is deprecated; send 'tools' instead.", "unsupported_parameter");
  if (body.function_call != null && body.function_call !== "none") throw invalidParam("function_call", "'function_call' is deprecated; send 'tool_choice' instead.", "unsupported_parameter");
  if (body.modalities != null && body.modalities.some((m) => m !== "text")) notYet("modalities", "modalities other than text");
  for (const p of ["audio", "prediction", "web_search_options"] as const) if (body[p] != null) notYet(p);
  if (body.top_logprobs != null && body.top_logprobs > 0 && !body.logprobs) throw invalidParam("top_logprobs", "top_logprobs requires logprobs: true.");
}

export function refuseUnsupportedCompletion(body: CompletionBody): void {
  refuseUnsupportedSampling(body);
  if (body.suffix != null && body.suffix !== "") notYet("suffix");
  if (body.best_of != null && body.best_of !== 1) notYet("best_of", "best_of > 1");
  if (body.echo && body.logprobs != null && body.logprobs !== false) throw invalidParam("logprobs", "'logprobs' with 'echo' would need the prompt's log-probabilities, which Shimmy does not compute; drop one of them.", "unsupported_parameter");
}

/** OpenAI's default temperature is 1. */
export const samplingFrom = (body: SamplingBody): SamplingOptions => samplingFromFields(body, 1);

/** Tool-call arguments as the template wants them: an object (OpenAI sends a JSON string). */
function argumentsObject(args: string | object | null | undefined, where: string): unknown {
  if (args == null || args === "") return {};
  if (typeof args !== "string") return args;
  try {
    return JSON.parse(args);
  } catch {
    throw invalidParam(where, "Tool call arguments must be a JSON object string.");
  }
}

function historyCalls(m: WireMessage, i: number): HistoryToolCall[] | undefined {
  if (!m.tool_calls?.length) return undefined;
  return m.tool_calls.map((c, j) => ({
    id: c.id ?? `call_${i}_${j}`,
    name: c.function.name,
    arguments: argumentsObject(c.function.arguments, `messages[${i}].tool_calls[${j}].function.arguments`),
  }));
}

/** Chat messages → engine messages. Non-text content parts are refused, never dropped. */
export function messagesFrom(body: { messages: WireMessage[] }, modelName: string): ChatMessage[] {
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
    if (m.role === "function") throw invalidParam(`messages[${i}].role`, "Role 'function' is deprecated; send 'tool' messages with a tool_call_id.", "unsupported_parameter");
    const role = m.role === "developer" ? "system" : (m.role as ChatMessage["role"]);
    return {
      role,
      content,
      name: m.name ?? undefined,
      toolCallId: m.tool_call_id ?? undefined,
      toolCalls: role === "assistant" ? historyCalls(m, i) : undefined,
      reasoning: m.reasoning_content ?? undefined,
    };
  });
}

export function maxTokensFrom(body: SamplingBody): number | undefined {
  const n = body.max_completion_tokens ?? body.max_tokens ?? body.n_predict ?? undefined;
  return n === -1 ? undefined : n;
}

/** OpenAI's tools → the engine's. Only function tools exist here. */
export function toolsFrom(body: ChatBody): ToolSpec[] | undefined {
  if (!body.tools?.length) return undefined;
  return body.tools.map((t, i) => {
    if (t.type !== "function" || !t.function) throw invalidParam(`tools[${i}].type`, `Only function tools are supported (got '${t.type}').`, "unsupported_parameter");
    const f = t.function;
    return { name: f.name, description: f.description ?? undefined, parameters: f.parameters ?? undefined, strict: f.strict ?? undefined };
  });
}

/** `tool_choice` → the engine's, checked against the tools sent. */
export function toolChoiceFrom(choice: unknown, tools: ToolSpec[] | undefined): ToolChoice | undefined {
  if (choice == null) return undefined;
  if (choice === "none" || choice === "auto" || choice === "required") {
    if (choice === "required" && !tools) throw invalidParam("tool_choice", "tool_choice 'required' needs tools.");
    return { mode: choice };
  }
  const named = choice as { type?: string; function?: { name?: string } };
  if (typeof choice === "object" && named.type === "function" && typeof named.function?.name === "string") {
    if (!tools?.some((t) => t.name === named.function!.name)) throw invalidParam("tool_choice", `tool_choice names '${named.function.name}', which is not among the tools.`);
    return { mode: "function", name: named.function.name };
  }
  throw invalidParam("tool_choice", `Invalid value for 'tool_choice': expected "none", "auto", "required" or {"type": "function", "function": {"name": …}}.`, "invalid_value");
}

/** response_format, or llama-server's grammar / json_schema fields → an output constraint. */
export function constraintFrom(body: ChatBody | CompletionBody): OutputConstraint | undefined {
  if (body.grammar != null) return { kind: "gbnf", grammar: body.grammar };
  if (body.json_schema != null) return { kind: "json_schema", schema: body.json_schema };
  const format = "response_format" in body ? body.response_format : undefined;
  if (format == null || format.type === "text") return undefined;
  if (format.type === "json_object") return { kind: "json_object" };
  if (format.type === "json_schema") {
    const schema = format.json_schema?.schema ?? format.schema;
    if (schema === undefined) throw invalidParam("response_format.json_schema.schema", "response_format json_schema needs a 'json_schema.schema'.", "missing_required_parameter");
    return { kind: "json_schema", schema };
  }
  throw invalidParam("response_format.type", `Unsupported response_format type '${format.type}' (text, json_object, json_schema).`, "invalid_value");
}

export type BaseRequest = Omit<GenerationRequest, "input" | "model" | "signal">;
