import { randomBytes } from "node:crypto";
import type { LlamaModel, Token } from "node-llama-cpp";
import { detectChatFormat, detectReasoning, promptOpensReasoning } from "./chat-format/detect.js";
import { genericToolsSystemPrompt } from "./chat-format/generic.js";
import { type ChatFormat, type OutputParser, type ReasoningMode, type ToolChoice, UnknownToolChoiceError } from "./chat-format/types.js";
import { InvalidGenerationError } from "./errors.js";
import { InvalidSchemaError, jsonObjectGrammar, jsonSchemaGrammar, UnsupportedSchemaError } from "./grammar/json-schema-gbnf.js";
import type { ChatMessage, GenerationRequest, ToolSpec } from "./types.js";

/** What a model's own files say about its output: its tool-call syntax, whether it reasons, and which markers are special tokens. Detected once, at load. */
export interface ModelOutputFormat {
  format: ChatFormat;
  reasoning: ReasoningMode;
  /** Some marker of the format is a special token (detokenized as "" unless asked for). */
  specialMarkers: boolean;
}

/** One token for `text`, when the vocabulary has it. */
function singleToken(model: LlamaModel, text: string): Token | undefined {
  const tokens = model.tokenize(text, true);
  return tokens.length === 1 && model.detokenize(tokens, true) === text ? tokens[0] : undefined;
}

export function detectOutputFormat(model: LlamaModel, template: string | undefined): ModelOutputFormat {
  const format = detectChatFormat(template);
  const thinkTokens = singleToken(model, "<think>") !== undefined && singleToken(model, "</think>") !== undefined;
  const specialMarkers = format.markers.some((m) => {
    const token = singleToken(model, m);
    return token !== undefined && model.detokenize([token], false) !== m;
  });
  return { format, reasoning: detectReasoning(template, thinkTokens), specialMarkers };
}

/** The chat-level part of a plan: what the template gets. */
export interface RenderPlan {
  messages: ChatMessage[];
  /** Tools the template renders itself (absent: none, or described in the system message instead). */
  templateTools?: ToolSpec[];
}

/** How a request's output is produced and read: the grammar it must match and the parser that splits it. */
export interface OutputPlan {
  grammar?: string;
  /** What the grammar came from, for the error that names the field. */
  grammarParam?: string;
  parser?: () => OutputParser;
  renderSpecialTokens: boolean;
}

/** Nesting allowed in a request's schemas: real ones are a few levels deep; deeper ones overflow the stack in the walks and renderers. */
const MAX_SCHEMA_NESTING = 100;

/** How deep a JSON value nests, iteratively (the value may be deeper than the stack allows). */
function nesting(value: unknown): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (!v || typeof v !== "object") continue;
    deepest = Math.max(deepest, depth);
    if (deepest > MAX_SCHEMA_NESTING) return deepest;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return deepest;
}

function checkNesting(value: unknown, param: string): void {
  if (nesting(value) > MAX_SCHEMA_NESTING) throw new InvalidGenerationError(`the schema nests deeper than ${MAX_SCHEMA_NESTING} levels`, param);
}

const activeTools = (request: GenerationRequest): ToolSpec[] | undefined => (request.tools?.length && request.toolChoice?.mode !== "none" ? request.tools : undefined);
const choiceOf = (request: GenerationRequest): ToolChoice => request.toolChoice ?? { mode: "auto" };

/**
 * The messages and tools the template renders. Templates that know tools get them; for the
 * others the tools are described in the system message (the generic fallback). Choice `none`
 * offers no tools at all, so the model is not invited to call one.
 */
export function renderPlan(request: GenerationRequest, out: ModelOutputFormat, templateUsesTools: boolean): RenderPlan {
  if (request.input.kind !== "chat") throw new Error("not a chat request");
  const messages = request.input.messages;
  const tools = activeTools(request);
  if (!tools) return { messages };
  for (const t of tools) checkNesting(t.parameters, "tools");
  if (out.format.templateHandlesTools && templateUsesTools) return { messages, templateTools: tools };
  const prompt = genericToolsSystemPrompt(tools, choiceOf(request), request.parallelToolCalls ?? true);
  const [first, ...rest] = messages;
  if (first?.role === "system") return { messages: [{ ...first, content: `${first.content}\n\n${prompt}` }, ...rest] };
  return { messages: [{ role: "system", content: prompt }, ...messages] };
}

/** Mistral's templates accept only 9-character alphanumeric call ids; the others take OpenAI-style ids. */
function idMaker(format: ChatFormat): () => string {
  if (format.id === "mistral" || format.id === "mistral-args") {
    const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    return () => [...randomBytes(9)].map((b) => alphabet[b % alphabet.length]).join("");
  }
  return () => `call_${randomBytes(12).toString("hex")}`;
}

function schemaError(e: unknown, param: string): never {
  if (e instanceof UnsupportedSchemaError) throw new InvalidGenerationError(`the schema uses '${e.keyword}' at ${e.path}, which Shimmy cannot enforce; remove it (docs/structured-output.md lists what is enforced)`, param);
  if (e instanceof InvalidSchemaError) throw new InvalidGenerationError(`invalid schema at ${e.path}: ${e.message}`, param);
  if (e instanceof UnknownToolChoiceError) throw new InvalidGenerationError(e.message, "tool_choice");
  throw e;
}

/**
 * The grammar and parser for a request. A response format constrains the whole output (no
 * reasoning split: the grammar leaves no room for it); tools constrain it per the model's call
 * syntax and choice; reasoning is split wherever the model reasons, unless asked to leave it inline.
 */
export function outputPlan(request: GenerationRequest, out: ModelOutputFormat, renderedPrompt: string | undefined): OutputPlan {
  const chat = request.input.kind === "chat";
  const tools = chat ? activeTools(request) : undefined;
  if (request.reasoning === "require" && out.reasoning === "none") throw new InvalidGenerationError(`"${request.model}" does not support thinking`, "think");
  if (request.constraint && tools) throw new InvalidGenerationError("a response format (structured output) cannot be combined with tools offered for calling; drop one of them", "response_format");
  if (request.constraint && request.reasoning === "require") throw new InvalidGenerationError("thinking cannot be combined with a response format: the format's grammar leaves no room for reasoning", "think");
  const reasoning: ReasoningMode = !chat || request.constraint || request.reasoning === "inline" ? "none" : out.reasoning;
  const startsInReasoning = renderedPrompt !== undefined && promptOpensReasoning(renderedPrompt, reasoning);
  // Markers the parser must see (tool syntax, <think>) may be special tokens, detokenized as "" by default.
  const plan: OutputPlan = { renderSpecialTokens: (tools !== undefined || reasoning !== "none") && out.specialMarkers };

  const c = request.constraint;
  if (c?.kind === "json_schema") checkNesting(c.schema, "response_format");
  for (const t of tools ?? []) checkNesting(t.parameters, "tools");
  try {
    if (c?.kind === "gbnf") [plan.grammar, plan.grammarParam] = [c.grammar, "grammar"];
    else if (c?.kind === "json_object") [plan.grammar, plan.grammarParam] = [jsonObjectGrammar(), "response_format"];
    else if (c?.kind === "json_schema") [plan.grammar, plan.grammarParam] = [jsonSchemaGrammar(c.schema), "response_format"];
    else if (tools) {
      plan.grammar = out.format.toolGrammar(tools, choiceOf(request), request.parallelToolCalls ?? true, { mode: reasoning, startsInReasoning });
      plan.grammarParam = "tools";
    }
  } catch (e) {
    schemaError(e, c ? "response_format" : "tools");
  }
  if (tools || reasoning !== "none") {
    const options = { tools: tools !== undefined, reasoning, startsInReasoning, newId: idMaker(out.format) };
    plan.parser = () => out.format.createParser(options);
  }
  return plan;
}
