import type { ChatMessage, GenerationRequest, HistoryToolCall, OutputConstraint, ToolChoice, ToolSpec } from "../../engine/types.js";
import { invalidParam } from "../errors.js";

/** A text part of a message's or a tool output's content (`input_text`, `output_text`; others are refused). */
export interface WirePart {
  type: string;
  text?: string;
}

/** One input item as validated by schemas.ts; its `type` says which fields it has. */
export interface WireItem {
  type?: string;
  role?: "user" | "assistant" | "system" | "developer";
  content?: string | WirePart[];
  call_id?: string;
  name?: string;
  arguments?: string;
  output?: string | WirePart[];
}

export interface WireFunctionTool {
  type: string;
  name?: string;
  description?: string | null;
  parameters?: Record<string, unknown> | null;
  strict?: boolean | null;
}

export interface TextFormat {
  type: "text" | "json_object" | "json_schema";
  name?: string;
  description?: string;
  schema?: Record<string, unknown>;
  strict?: boolean | null;
}

/** A Responses API body as validated by schemas.ts (`null` = unset). */
export interface ResponsesBody {
  model: string;
  input: string | WireItem[];
  instructions?: string | null;
  max_output_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  tools?: WireFunctionTool[];
  tool_choice?: unknown;
  parallel_tool_calls?: boolean | null;
  text?: { format?: TextFormat; verbosity?: string | null };
  reasoning?: { effort?: string | null; summary?: string | null; generate_summary?: string | null } | null;
  stream?: boolean | null;
  stream_options?: { include_obfuscation?: boolean } | null;
  include?: string[] | null;
  top_logprobs?: number | null;
  truncation?: "auto" | "disabled" | null;
  metadata?: Record<string, string> | null;
  user?: string;
  store?: boolean | null;
  service_tier?: string | null;
  prompt_cache_key?: string | null;
  safety_identifier?: string | null;
  previous_response_id?: string | null;
  conversation?: unknown;
  prompt?: unknown;
  background?: boolean | null;
}

/** The `include` value that asks for log-probabilities; other values name outputs of tools Shimmy does not have. */
export const LOGPROBS_INCLUDE = "message.output_text.logprobs";

const stateless = (param: string, what: string): never => {
  throw invalidParam(param, `${what} is not supported: Shimmy's Responses API is stateless and stores no responses; send the whole conversation in 'input'.`, "unsupported_parameter");
};

/** Refuses what needs stored state or would change the answer in a way Shimmy cannot honour. */
export function refuseUnsupported(body: ResponsesBody): void {
  if (body.previous_response_id != null) stateless("previous_response_id", "'previous_response_id'");
  if (body.conversation != null) stateless("conversation", "'conversation'");
  if (body.prompt != null) stateless("prompt", "A stored prompt ('prompt')");
  if (body.background) stateless("background", "'background: true'");
  if (body.stream_options != null && !body.stream) throw invalidParam("stream_options", "stream_options is only allowed when stream is true.");
}

/** The text of a content list: text parts only; images, files and audio are refused, never dropped. */
function partsText(content: string | WirePart[], where: string, modelName: string): string {
  if (typeof content === "string") return content;
  return content
    .map((part, j) => {
      if (part.type === "input_text" || part.type === "output_text") {
        if (typeof part.text !== "string") throw invalidParam(`${where}[${j}].text`, `A ${part.type} part needs a string 'text'.`);
        return part.text;
      }
      if (/^input_(image|file|audio)$/.test(part.type)) {
        throw invalidParam(`${where}[${j}]`, `Model "${modelName}" does not support ${part.type.slice(6)} input; only text parts are accepted.`, "unsupported_content");
      }
      throw invalidParam(`${where}[${j}].type`, `Unsupported content part type '${part.type}' (input_text, output_text).`, "invalid_value");
    })
    .join("");
}

function callArguments(text: string, where: string): unknown {
  if (text === "") return {};
  try {
    return JSON.parse(text);
  } catch {
    throw invalidParam(where, "Function call arguments must be a JSON object string.");
  }
}

/**
 * `instructions` and `input` → chat messages. Consecutive `function_call` items become one
 * assistant turn with those calls (as the chat templates expect them); reasoning items are dropped.
 */
export function messagesFrom(body: ResponsesBody, modelName: string): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (body.instructions != null) messages.push({ role: "system", content: body.instructions });
  if (typeof body.input === "string") {
    messages.push({ role: "user", content: body.input });
    return messages;
  }
  const callNames = new Map<string, string>();
  body.input.forEach((item, i) => {
    const where = `input[${i}]`;
    const type = item.type ?? "message";
    if (type === "message") {
      const role = item.role === "developer" ? "system" : item.role!;
      messages.push({ role, content: partsText(item.content!, `${where}.content`, modelName) });
    } else if (type === "function_call") {
      const call: HistoryToolCall = { id: item.call_id!, name: item.name!, arguments: callArguments(item.arguments!, `${where}.arguments`) };
      callNames.set(call.id, call.name);
      const last = messages[messages.length - 1];
      // A message and the calls after it are one assistant turn (Responses lists them as separate items).
      if (last?.role === "assistant") (last.toolCalls ??= []).push(call);
      else messages.push({ role: "assistant", content: "", toolCalls: [call] });
    } else if (type === "function_call_output") {
      messages.push({ role: "tool", content: partsText(item.output!, `${where}.output`, modelName), toolCallId: item.call_id, name: callNames.get(item.call_id!) });
    } else if (type === "item_reference") {
      stateless(`${where}`, "An 'item_reference' input item");
    } else if (type !== "reasoning") {
      throw invalidParam(`${where}.type`, `Input items of type '${type}' are not supported (message, function_call, function_call_output, reasoning).`, "unsupported_parameter");
    }
  });
  return messages;
}

/** Function tools → the engine's; hosted tools (web_search, file_search, …) are refused by name. */
export function toolsFrom(body: ResponsesBody): ToolSpec[] | undefined {
  if (!body.tools?.length) return undefined;
  return body.tools.map((t, i) => {
    if (t.type !== "function") throw invalidParam(`tools[${i}].type`, `Tool type '${t.type}' is not supported; Shimmy runs function tools only.`, "unsupported_parameter");
    return { name: t.name!, description: t.description ?? undefined, parameters: t.parameters ?? undefined, strict: t.strict ?? undefined };
  });
}

/** `tool_choice` → the engine's, checked against the tools sent. */
export function toolChoiceFrom(choice: unknown, tools: ToolSpec[] | undefined): ToolChoice | undefined {
  if (choice == null) return undefined;
  if (choice === "none" || choice === "auto" || choice === "required") {
    if (choice === "required" && !tools) throw invalidParam("tool_choice", "tool_choice 'required' needs tools.");
    return { mode: choice };
  }
  const named = choice as { type?: unknown; name?: unknown };
  if (typeof choice === "object" && named.type === "function" && typeof named.name === "string") {
    if (!tools?.some((t) => t.name === named.name)) throw invalidParam("tool_choice", `tool_choice names '${named.name}', which is not among the tools.`);
    return { mode: "function", name: named.name };
  }
  if (typeof choice === "object" && typeof named.type === "string") throw invalidParam("tool_choice.type", `tool_choice of type '${named.type}' is not supported ("none", "auto", "required", {"type": "function", "name": …}).`, "unsupported_parameter");
  throw invalidParam("tool_choice", `Invalid value for 'tool_choice': expected "none", "auto", "required" or {"type": "function", "name": …}.`, "invalid_value");
}

/** `text.format` → an output constraint; it cannot be combined with tools the model may call. */
export function constraintFrom(body: ResponsesBody, toolChoice: ToolChoice | undefined): OutputConstraint | undefined {
  const format = body.text?.format;
  if (format == null || format.type === "text") return undefined;
  if (body.tools?.length && toolChoice?.mode !== "none") throw invalidParam("text.format", `text.format '${format.type}' cannot be combined with tools; send tool_choice "none" or drop one of them.`);
  return format.type === "json_object" ? { kind: "json_object" } : { kind: "json_schema", schema: format.schema };
}

/** Log-probabilities are returned when `include` asks for them or `top_logprobs` wants alternatives. */
export const wantsLogprobs = (body: ResponsesBody): boolean => body.include?.includes(LOGPROBS_INCLUDE) === true || (body.top_logprobs ?? 0) > 0;

/** The whole request the engine runs (the model name and signal come from the route). */
export function generationRequest(body: ResponsesBody, modelName: string): Omit<GenerationRequest, "model" | "signal"> {
  const tools = toolsFrom(body);
  const toolChoice = toolChoiceFrom(body.tool_choice, tools);
  return {
    input: { kind: "chat", messages: messagesFrom(body, modelName) },
    // OpenAI's default temperature is 1.
    sampling: { temperature: body.temperature ?? 1, topP: body.top_p ?? undefined },
    maxTokens: body.max_output_tokens ?? undefined,
    stop: [],
    tools,
    toolChoice,
    parallelToolCalls: body.parallel_tool_calls ?? undefined,
    constraint: constraintFrom(body, toolChoice),
    reasoning: "separate",
    logprobs: wantsLogprobs(body) ? { top: body.top_logprobs ?? 0 } : undefined,
  };
}
