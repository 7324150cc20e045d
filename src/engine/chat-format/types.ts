/** A function the model may call: OpenAI's `function` object. */
export interface ToolSpec {
  name: string;
  description?: string;
  /** JSON Schema of the arguments object. */
  parameters?: object;
  strict?: boolean;
}

export type ToolChoice = { mode: "none" | "auto" | "required" } | { mode: "function"; name: string };

export type ParseEvent =
  | { type: "content"; text: string }
  | { type: "reasoning"; text: string }
  | { type: "tool_call"; index: number; id: string; name: string }
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

export interface OutputParser {
  push(text: string): ParseEvent[];
  end(): ParseEvent[];
}

export type ReasoningMode = "none" | "think-tags";

export interface ChatFormat {
  readonly id: "hermes" | "llama3" | "mistral" | "mistral-args" | "generic";
  /** The template renders `tools` itself (else the generic fallback injects a system prompt). */
  readonly templateHandlesTools: boolean;
  /** Text markers the format uses that may be special tokens (the engine then detokenizes them as text). */
  readonly markers: string[];
  /** GBNF enforcing the output for this tool choice; undefined = unconstrained (mode none, or no tools). */
  toolGrammar(tools: ToolSpec[], choice: ToolChoice, parallel: boolean): string | undefined;
  createParser(options: { tools: boolean; reasoning: ReasoningMode; startsInReasoning: boolean; newId: () => string }): OutputParser;
}
