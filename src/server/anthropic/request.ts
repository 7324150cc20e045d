import type { ChatMessage, GenerationRequest, HistoryToolCall, OutputConstraint, SamplingOptions, ToolChoice, ToolSpec } from "../../engine/types.js";
import { invalidParam } from "../errors.js";

/** A content block as validated by schemas.ts (its `type` picks which fields it has). */
export interface WireBlock {
  type: string;
  text?: string;
  id?: string;
  name?: string;
  input?: Record<string, unknown>;
  tool_use_id?: string;
  content?: string | WireBlock[];
  is_error?: boolean;
  thinking?: string;
}

export interface WireMessage {
  role: "user" | "assistant";
  content: string | WireBlock[];
}

export interface WireTool {
  type?: string | null;
  name: string;
  description?: string;
  input_schema: object;
  defer_loading?: boolean;
  input_examples?: object[];
}

export interface WireToolChoice {
  type: "auto" | "any" | "tool" | "none";
  name?: string;
  disable_parallel_tool_use?: boolean;
}

export interface WireThinking {
  type: string;
  budget_tokens?: number;
  display?: "summarized" | "omitted" | null;
}

/** What both routes read: the fields that shape the prompt (schemas.ts `promptFields`). */
export interface PromptBody {
  model: string;
  messages: WireMessage[];
  system?: string | WireBlock[];
  tools?: WireTool[];
  tool_choice?: WireToolChoice;
  thinking?: WireThinking;
  output_config?: { effort?: string | null; format?: { type: "json_schema"; schema: object } | null };
  mcp_servers?: unknown[];
  context_management?: { edits?: unknown[] } | null;
}

export interface MessagesBody extends PromptBody {
  max_tokens: number;
  stop_sequences?: string[];
  temperature?: number;
  top_p?: number;
  top_k?: number;
  stream?: boolean;
  container?: string | { id?: string | null; skills?: unknown[] | null } | null;
}

/** The engine request for a prompt, and whether its reasoning goes back to the client as thinking blocks. */
export interface PromptRequest {
  request: Pick<GenerationRequest, "input" | "tools" | "toolChoice" | "parallelToolCalls" | "constraint" | "reasoning" | "templateVariables">;
  thinkingReturned: boolean;
}

const unsupported = (param: string, message: string): never => {
  throw invalidParam(param, message, "unsupported_parameter");
};

/** Text blocks → one text, joined by newlines (as llama-server joins content parts). */
function joinText(blocks: WireBlock[]): string {
  return blocks.map((b) => b.text!).join("\n");
}

/** Refuses a block Shimmy cannot read: images and documents (no vision yet) and Anthropic's server-side blocks. */
function refuseBlock(block: WireBlock, where: string, model: string): never {
  if (block.type === "image" || block.type === "document") {
    throw invalidParam(where, `Model "${model}" does not support ${block.type} input; only text, tool_use, tool_result and thinking blocks are accepted.`, "unsupported_content");
  }
  if (block.type === "redacted_thinking") unsupported(where, "redacted_thinking blocks hold reasoning encrypted by Anthropic, which a local model cannot read; remove them.");
  return unsupported(where, `Content blocks of type '${block.type}' are not supported by Shimmy (text, tool_use, tool_result and thinking are).`);
}

/** A tool_result's content as the tool message's text; `is_error` is said in the text, as no chat template has a field for it. */
function toolResultText(block: WireBlock, where: string, model: string): string {
  const content = block.content ?? "";
  const text = typeof content === "string" ? content : content.map((b, k) => (b.type === "text" ? b.text! : refuseBlock(b, `${where}.content[${k}]`, model))).join("\n");
  return block.is_error ? `Error: ${text}` : text;
}

/** One user turn → engine messages in block order: tool results become `tool` messages, text between them `user` messages. */
function userMessages(blocks: WireBlock[], i: number, model: string): ChatMessage[] {
  const out: ChatMessage[] = [];
  let text: WireBlock[] = [];
  const flush = (): void => {
    if (text.length > 0) out.push({ role: "user", content: joinText(text) });
    text = [];
  };
  blocks.forEach((block, j) => {
    const where = `messages[${i}].content[${j}]`;
    if (block.type === "text") text.push(block);
    else if (block.type === "tool_result") {
      flush();
      out.push({ role: "tool", content: toolResultText(block, where, model), toolCallId: block.tool_use_id });
    } else if (block.type === "tool_use" || block.type === "thinking") throw invalidParam(`${where}.type`, `A user message cannot hold a ${block.type} block; it belongs to the assistant.`);
    else refuseBlock(block, where, model);
  });
  flush();
  // A turn of nothing but an empty list is still a (blank) user turn.
  return out.length > 0 ? out : [{ role: "user", content: "" }];
}

/** One assistant turn → one engine message: its text, its tool calls (input as the arguments object) and its thinking. */
function assistantMessage(blocks: WireBlock[], i: number, model: string): ChatMessage {
  const text: WireBlock[] = [];
  const calls: HistoryToolCall[] = [];
  let reasoning = "";
  blocks.forEach((block, j) => {
    const where = `messages[${i}].content[${j}]`;
    if (block.type === "text") text.push(block);
    else if (block.type === "tool_use") calls.push({ id: block.id!, name: block.name!, arguments: block.input });
    else if (block.type === "thinking") reasoning += block.thinking!;
    else if (block.type === "tool_result") throw invalidParam(`${where}.type`, "An assistant message cannot hold a tool_result block; send it in the next user message.");
    else refuseBlock(block, where, model);
  });
  return { role: "assistant", content: joinText(text), toolCalls: calls.length > 0 ? calls : undefined, reasoning: reasoning || undefined };
}

/** `system` and `messages` → engine messages (system first). */
export function messagesFrom(body: PromptBody, model: string): ChatMessage[] {
  const out: ChatMessage[] = [];
  if (body.system !== undefined) {
    const system = typeof body.system === "string" ? body.system : joinText(body.system);
    if (system !== "") out.push({ role: "system", content: system });
  }
  const last = body.messages[body.messages.length - 1]!;
  // Anthropic continues a final assistant message (prefill); chat templates close it and start a new turn.
  if (last.role === "assistant") throw invalidParam(`messages[${body.messages.length - 1}].role`, "A final assistant message (prefill) is not supported: the model would answer after it, not continue it. End with a user message.", "unsupported_parameter");
  body.messages.forEach((m, i) => {
    const blocks: WireBlock[] = typeof m.content === "string" ? [{ type: "text", text: m.content }] : m.content;
    if (m.role === "user") out.push(...userMessages(blocks, i, model));
    else out.push(assistantMessage(blocks, i, model));
  });
  return out;
}

/** Client tools → the engine's; server tools (web search, bash, …) are refused by name. */
export function toolsFrom(tools: WireTool[] | undefined): ToolSpec[] | undefined {
  if (!tools?.length) return undefined;
  return tools.map((t, i) => {
    if (t.type != null && t.type !== "custom") unsupported(`tools[${i}].type`, `Server tools ('${t.type}') are not supported by Shimmy; send client tools ({name, description, input_schema}).`);
    if (t.defer_loading) unsupported(`tools[${i}].defer_loading`, "defer_loading (tool search) is not supported; send the tool without it.");
    if (t.input_examples?.length) unsupported(`tools[${i}].input_examples`, "input_examples are not supported; describe the input in the tool's description instead.");
    return { name: t.name, description: t.description, parameters: t.input_schema };
  });
}

/** `tool_choice` → the engine's choice and whether several calls may come in one turn. */
export function toolChoiceFrom(choice: WireToolChoice | undefined, tools: ToolSpec[] | undefined): { toolChoice?: ToolChoice; parallelToolCalls?: boolean } {
  if (!choice) return {};
  const parallelToolCalls = choice.disable_parallel_tool_use ? false : undefined;
  if (choice.type === "none") {
    if (choice.name !== undefined || choice.disable_parallel_tool_use !== undefined) throw invalidParam("tool_choice", "tool_choice {type: \"none\"} takes no other fields.");
    return { toolChoice: { mode: "none" } };
  }
  if (choice.type === "tool") {
    if (choice.name === undefined) throw invalidParam("tool_choice.name", "tool_choice {type: \"tool\"} needs the tool's 'name'.", "missing_required_parameter");
    if (!tools?.some((t) => t.name === choice.name)) throw invalidParam("tool_choice.name", `tool_choice names '${choice.name}', which is not among the tools.`);
    return { toolChoice: { mode: "function", name: choice.name }, parallelToolCalls };
  }
  if (choice.name !== undefined) throw invalidParam("tool_choice.name", `tool_choice {type: "${choice.type}"} takes no 'name'; send {type: "tool", name} to force one tool.`);
  if (choice.type === "any") {
    if (!tools) throw invalidParam("tool_choice", "tool_choice {type: \"any\"} needs tools.");
    return { toolChoice: { mode: "required" }, parallelToolCalls };
  }
  return { toolChoice: { mode: "auto" }, parallelToolCalls };
}

/**
 * `thinking` → the engine's reasoning separation. Unset, `enabled` and `adaptive` split the
 * model's reasoning out and return it as thinking blocks (`display: "omitted"` leaves them out);
 * `disabled` tells templates that read it (`enable_thinking: false`) and drops any reasoning the
 * model writes anyway, so the text is the answer alone. `budget_tokens` is not enforced apart
 * from max_tokens, which bounds thinking and answer together (as on Anthropic).
 */
export function thinkingFrom(thinking: WireThinking | undefined, maxTokens: number | undefined): { reasoning: "separate"; returned: boolean; templateVariables?: Record<string, unknown> } {
  if (!thinking) return { reasoning: "separate", returned: true };
  if (thinking.type === "disabled") {
    if (thinking.budget_tokens !== undefined || thinking.display != null) throw invalidParam("thinking", "thinking {type: \"disabled\"} takes no other fields.");
    return { reasoning: "separate", returned: false, templateVariables: { enable_thinking: false } };
  }
  if (thinking.type === "enabled") {
    if (thinking.budget_tokens === undefined) throw invalidParam("thinking.budget_tokens", "thinking {type: \"enabled\"} needs 'budget_tokens'.", "missing_required_parameter");
    if (maxTokens !== undefined && thinking.budget_tokens >= maxTokens) throw invalidParam("thinking.budget_tokens", "thinking.budget_tokens must be less than max_tokens.");
  } else if (thinking.type === "adaptive") {
    if (thinking.budget_tokens !== undefined) throw invalidParam("thinking.budget_tokens", "thinking {type: \"adaptive\"} takes no 'budget_tokens'.");
  } else {
    throw invalidParam("thinking.type", `thinking type '${thinking.type}' is not supported (enabled, adaptive, disabled).`, "invalid_value");
  }
  return { reasoning: "separate", returned: thinking.display !== "omitted" };
}

/** Refuses fields that would change the answer and that Shimmy cannot honour. */
function refuseUnsupported(body: PromptBody & { container?: MessagesBody["container"] }): void {
  if (body.mcp_servers?.length) unsupported("mcp_servers", "MCP servers are not supported by Shimmy: it calls no tools itself; send them as client tools.");
  if (body.context_management?.edits?.length) unsupported("context_management", "context_management edits are not supported: Shimmy sends the conversation as it is.");
  if (typeof body.container === "object" && body.container?.skills?.length) unsupported("container.skills", "Skills are not supported by Shimmy.");
}

/** The request both routes build from a body: prompt, tools, reasoning, output format. */
export function promptRequest(body: PromptBody & { container?: MessagesBody["container"] }, model: string, maxTokens?: number): PromptRequest {
  refuseUnsupported(body);
  const tools = toolsFrom(body.tools);
  const thinking = thinkingFrom(body.thinking, maxTokens);
  const effort = body.output_config?.effort;
  // Templates that read a reasoning effort (as Ollama passes its think levels) get it.
  const templateVariables = effort ? { ...thinking.templateVariables, reasoning_effort: effort } : thinking.templateVariables;
  const format = body.output_config?.format;
  const constraint: OutputConstraint | undefined = format ? { kind: "json_schema", schema: format.schema } : undefined;
  return {
    request: {
      input: { kind: "chat", messages: messagesFrom(body, model) },
      tools,
      ...toolChoiceFrom(body.tool_choice, tools),
      constraint,
      reasoning: thinking.reasoning,
      templateVariables,
    },
    thinkingReturned: thinking.returned,
  };
}

/** Sampling as Anthropic defines it: temperature defaults to 1. */
export function samplingFrom(body: MessagesBody): SamplingOptions {
  return { temperature: body.temperature ?? 1, topP: body.top_p, topK: body.top_k };
}
