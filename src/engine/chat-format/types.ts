/** Tool calling and reasoning separation: the pure text layer between the engine and a model's output. */

export interface ToolSpec {
  name: string;
  description?: string;
  /** JSON Schema of the arguments object; absent = any object. */
  parameters?: object;
  strict?: boolean;
}

export type ToolChoice = { mode: "none" | "auto" | "required" } | { mode: "function"; name: string };

export type ParseEvent =
  | { type: "content"; text: string }
  | { type: "reasoning"; text: string }
  /** First event of call #index. */
  | { type: "tool_call"; index: number; id: string; name: string }
  /** A fragment of call #index's arguments JSON text. */
  | { type: "tool_args"; index: number; text: string };

export interface ParsedCall {
  id: string;
  name: string;
  /** JSON object text. */
  arguments: string;
}

export interface ParsedOutput {
  content: string;
  reasoning: string;
  toolCalls: ParsedCall[];
}

/** Fed the model's output as it streams; `end()` flushes what was held back. */
export interface OutputParser {
  push(text: string): ParseEvent[];
  end(): ParseEvent[];
}

export type ReasoningMode = "none" | "think-tags";

export interface ParserOptions {
  /** Tools were offered: parse calls (else tool markers are plain content). */
  tools: boolean;
  reasoning: ReasoningMode;
  /** The rendered prompt already opened a reasoning block. */
  startsInReasoning: boolean;
  newId: () => string;
}

/** Reasoning the grammar must let through before the calls (toolGrammar's optional 4th argument). */
export interface GrammarReasoning {
  mode: ReasoningMode;
  startsInReasoning: boolean;
}

export type ChatFormatId = "hermes" | "llama3" | "mistral" | "mistral-args" | "generic";

export interface ChatFormat {
  readonly id: ChatFormatId;
  /** The template renders `tools` itself (else the generic fallback injects a system prompt). */
  readonly templateHandlesTools: boolean;
  /** Text markers the format uses that may be special tokens (the engine then detokenizes them as text). */
  readonly markers: string[];
  /** GBNF enforcing the output for this tool choice; undefined = unconstrained (mode none, or no tools). */
  toolGrammar(tools: ToolSpec[], choice: ToolChoice, parallel: boolean, reasoning?: GrammarReasoning): string | undefined;
  createParser(options: ParserOptions): OutputParser;
}

/** A tool choice naming a function that is not among the tools offered. */
export class UnknownToolChoiceError extends Error {
  constructor(readonly toolName: string) {
    super(`tool_choice names function "${toolName}", which is not among the tools`);
    this.name = "UnknownToolChoiceError";
  }
}
