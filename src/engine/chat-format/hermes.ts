/**
 * Hermes 2 Pro / Qwen2.5 / Qwen3 / QwQ: calls as `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`
 * blocks after optional text.
 */

import { GbnfBuilder } from "../grammar/json-schema-gbnf.js";
import { callsFromJsonText } from "./call-json.js";
import { CallStreamParser, jsonCallReader, type CallSyntax } from "./call-stream.js";
import { buildToolGrammar, composeParser, THINK_MARKERS } from "./compose.js";
import { callObjectRule, repeatCalls, textWithout } from "./grammar-parts.js";
import type { ChatFormat } from "./types.js";

const OPEN = "<tool_call>";
const CLOSE = "</tool_call>";
const ARGS_KEYS = ["arguments"];

const syntax: CallSyntax = {
  trigger: OPEN,
  closing: CLOSE,
  bareCallStart: false,
  // A block normally holds one call object; a list of them is accepted too.
  newBodyReader: jsonCallReader("{[", (json) => callsFromJsonText(json, ARGS_KEYS)),
};

export const hermesFormat: ChatFormat = {
  id: "hermes",
  templateHandlesTools: true,
  markers: [OPEN, CLOSE, ...THINK_MARKERS],
  toolGrammar: (tools, choice, parallel, reasoning) =>
    buildToolGrammar(tools, choice, parallel, reasoning, ({ b, tools: allowed, optional, parallel: many }) => {
      // The free text comes first so its automaton rules are named before any schema rule.
      const text = optional ? textWithout(b, OPEN, "text-before-call") : "";
      const sp = b.space();
      const call = b.rule("tool-call-block", `${GbnfBuilder.literal(OPEN)} ${sp} ${callObjectRule(b, allowed, "arguments")} ${sp} ${GbnfBuilder.literal(CLOSE)}`);
      const calls = `${repeatCalls(call, sp, many)} ${sp}`;
      return optional ? `${text} ( ${calls} )?` : `${sp} ${calls}`;
    }),
  createParser: (options) => composeParser(options, () => new CallStreamParser(syntax, options.newId)),
};
