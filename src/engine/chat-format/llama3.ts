/**
 * Llama 3.1 / 3.2 / 3.3: a call is a JSON object `{"name": ..., "parameters": {...}}` that makes up
 * the whole answer (optionally after `<|python_tag|>`); several are separated by `;` or newlines.
 */

import { GbnfBuilder } from "../grammar/json-schema-gbnf.js";
import { asList, callFromObjectText } from "./call-json.js";
import { CallStreamParser, jsonCallReader, type CallSyntax } from "./call-stream.js";
import { buildToolGrammar, composeParser, THINK_MARKERS } from "./compose.js";
import { ANY_CHAR, callObjectRule, repeatCalls } from "./grammar-parts.js";
import type { ChatFormat } from "./types.js";

const PYTHON_TAG = "<|python_tag|>";
const ARGS_KEYS = ["parameters", "arguments"];

const syntax: CallSyntax = {
  trigger: PYTHON_TAG,
  separator: ";",
  bareCallStart: true,
  newBodyReader: jsonCallReader("{", (json) => asList(callFromObjectText(json, ARGS_KEYS))),
};

export const llama3Format: ChatFormat = {
  id: "llama3",
  templateHandlesTools: true,
  markers: [PYTHON_TAG, ...THINK_MARKERS],
  toolGrammar: (tools, choice, parallel, reasoning) =>
    buildToolGrammar(tools, choice, parallel, reasoning, ({ b, tools: allowed, optional, parallel: many }) => {
      const sp = b.space();
      const call = callObjectRule(b, allowed, "parameters");
      const calls = `${sp} ${GbnfBuilder.literal(PYTHON_TAG)}? ${repeatCalls(call, `${sp} ";"? ${sp}`, many)} ${sp}`;
      if (!optional) return calls;
      // Text instead of a call: anything whose first non-space character is not "{".
      const text = b.rule("plain-answer", `[ \\t\\r\\n]* ( [^{ \\t\\r\\n\\x00] ${ANY_CHAR}* )?`);
      return `( ${b.rule("calls", calls)} | ${text} )`;
    }),
  createParser: (options) => composeParser(options, () => new CallStreamParser(syntax, options.newId)),
};
