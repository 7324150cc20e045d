/** Assembling a format's parser and grammar from its parts. */

import { GbnfBuilder } from "../grammar/json-schema-gbnf.js";
import { ContentParser, ReasoningSplitter } from "./reasoning.js";
import { allowedTools, reasoningPrefix } from "./grammar-parts.js";
import { THINK_CLOSE, THINK_OPEN } from "./markers.js";
import type { GrammarReasoning, OutputParser, ParserOptions, ToolChoice, ToolSpec } from "./types.js";

/** The format's body parser behind the reasoning splitter; tool markers are plain content without tools. */
export function composeParser(options: ParserOptions, toolParser: () => OutputParser): OutputParser {
  const body = options.tools ? toolParser() : new ContentParser();
  if (options.reasoning === "none") return body;
  return new ReasoningSplitter(body, options.startsInReasoning);
}

export interface GrammarRequest {
  b: GbnfBuilder;
  tools: ToolSpec[];
  /** Auto: the model may answer in text instead of calling. */
  optional: boolean;
  parallel: boolean;
  /** The reasoning block allowed first ("" when none), built before anything else. */
  reasoning: string;
}

/**
 * The grammar for a tool choice, or undefined when the output is unconstrained (mode none or no
 * tools). `root` gets the builder with the reasoning prefix's rules already made and returns the
 * root body after that prefix.
 */
export function buildToolGrammar(
  tools: ToolSpec[],
  choice: ToolChoice,
  parallel: boolean,
  reasoning: GrammarReasoning | undefined,
  root: (request: GrammarRequest) => string,
): string | undefined {
  if (tools.length === 0) return undefined;
  const allowed = allowedTools(tools, choice);
  if (allowed.length === 0) return undefined;
  const b = new GbnfBuilder();
  const prefix = reasoningPrefix(b, reasoning);
  const body = root({ b, tools: allowed, optional: choice.mode === "auto", parallel, reasoning: prefix });
  return b.build(`${prefix} ${body}`.trim());
}

export const THINK_MARKERS = [THINK_OPEN, THINK_CLOSE];
