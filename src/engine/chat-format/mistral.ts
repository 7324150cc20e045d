/**
 * Mistral: `[TOOL_CALLS]` followed by a JSON list of calls (Nemo, v3 tokenizer), or, in newer
 * templates that know `[ARGS]` (Mistral Small 3.2, Devstral, Magistral), by `name[ARGS]{...}` per call.
 */

import { GbnfBuilder } from "../grammar/json-schema-gbnf.js";
import { callsFromJsonText, objectArgumentsText } from "./call-json.js";
import { CallStreamParser, jsonCallReader, type BodyReader, type CallSyntax } from "./call-stream.js";
import { buildToolGrammar, composeParser, THINK_MARKERS } from "./compose.js";
import { argumentsRule, callObjectRule, jsonMember, repeatCalls, textWithout } from "./grammar-parts.js";
import { JsonValueScanner } from "./json-scan.js";
import type { ChatFormat } from "./types.js";

const TOOL_CALLS = "[TOOL_CALLS]";
const ARGS = "[ARGS]";
const CALL_ID = "[CALL_ID]";
const ARGS_KEYS = ["arguments"];
/** Mistral templates require call ids of 9 letters or digits. */
const MISTRAL_ID = /^[A-Za-z0-9]{9}$/;
const ID_CHARS = "[a-zA-Z0-9]{9}";

const listSyntax: CallSyntax = {
  trigger: TOOL_CALLS,
  bareCallStart: false,
  newBodyReader: jsonCallReader("[{", (json) => callsFromJsonText(json, ARGS_KEYS)),
  keepsModelId: (id) => MISTRAL_ID.test(id),
};

/** Reads `name[ARGS]{...}` (with `[CALL_ID]id` allowed before `[ARGS]`). */
function namedArgsReader(): BodyReader {
  const scanner = new JsonValueScanner("{");
  return (body) => {
    const name = /^[A-Za-z0-9_.:-]*/.exec(body)![0];
    let at = name.length;
    let id: string | undefined;
    if (body.startsWith(CALL_ID, at)) {
      id = /^[A-Za-z0-9]*/.exec(body.slice(at + CALL_ID.length))![0];
      at += CALL_ID.length + id.length;
    }
    const rest = body.slice(at);
    if (!rest.startsWith(ARGS)) {
      const couldFollow = ARGS.startsWith(rest) || (id === undefined && CALL_ID.startsWith(rest));
      return couldFollow ? { status: "incomplete" } : { status: "invalid" };
    }
    if (name === "") return { status: "invalid" };
    const scan = scanner.advance(body, at + ARGS.length);
    if (scan.status !== "done") return scan;
    const args = objectArgumentsText(body.slice(at + ARGS.length, scan.end));
    if (args === undefined) return { status: "invalid" };
    return { status: "done", calls: [{ name, arguments: args, ...(id ? { id } : {}) }], end: scan.end };
  };
}

const argsSyntax: CallSyntax = {
  trigger: TOOL_CALLS,
  bareCallStart: false,
  newBodyReader: namedArgsReader,
  keepsModelId: (id) => MISTRAL_ID.test(id),
};

export const mistralFormat: ChatFormat = {
  id: "mistral",
  templateHandlesTools: true,
  markers: [TOOL_CALLS, ...THINK_MARKERS],
  toolGrammar: (tools, choice, parallel, reasoning) =>
    buildToolGrammar(tools, choice, parallel, reasoning, ({ b, tools: allowed, optional, parallel: many }) => {
      const text = optional ? textWithout(b, TOOL_CALLS, "text-before-calls") : "";
      const sp = b.space();
      const id = `( "," ${sp} ${jsonMember(b, "id", `"\\"" ${ID_CHARS} "\\""`)} )?`;
      const call = callObjectRule(b, allowed, "arguments", id);
      const list = `${GbnfBuilder.literal(TOOL_CALLS)} "[" ${sp} ${repeatCalls(call, `"," ${sp}`, many)} ${sp} "]" ${sp}`;
      return optional ? `${text} ( ${list} )?` : `${sp} ${list}`;
    }),
  createParser: (options) => composeParser(options, () => new CallStreamParser(listSyntax, options.newId)),
};

export const mistralArgsFormat: ChatFormat = {
  id: "mistral-args",
  templateHandlesTools: true,
  markers: [TOOL_CALLS, ARGS, CALL_ID, ...THINK_MARKERS],
  toolGrammar: (tools, choice, parallel, reasoning) =>
    buildToolGrammar(tools, choice, parallel, reasoning, ({ b, tools: allowed, optional, parallel: many }) => {
      const text = optional ? textWithout(b, TOOL_CALLS, "text-before-calls") : "";
      const perTool = allowed.map((tool) =>
        b.rule(
          `${tool.name}-call`,
          `${GbnfBuilder.literal(TOOL_CALLS + tool.name)} ( ${GbnfBuilder.literal(CALL_ID)} ${ID_CHARS} )? ${GbnfBuilder.literal(ARGS)} ${argumentsRule(b, tool)}`,
        ),
      );
      const call = b.rule("call", perTool.join(" | "));
      const calls = `${repeatCalls(call, "", many)} ${b.space()}`;
      return optional ? `${text} ( ${calls} )?` : `${b.space()} ${calls}`;
    }),
  createParser: (options) => composeParser(options, () => new CallStreamParser(argsSyntax, options.newId)),
};
