/**
 * The generic fallback for templates that do not render tools: Shimmy describes the tools in the
 * system message and the grammar makes the whole answer a JSON object (after optional reasoning),
 * either a call or, in auto mode, `{"response": "..."}`.
 */

import { buildToolGrammar, composeParser, THINK_MARKERS } from "./compose.js";
import { GenericOutputParser } from "./generic-parser.js";
import { allowedTools, callObjectRule, jsonMember, repeatCalls } from "./grammar-parts.js";
import type { ChatFormat, ToolChoice, ToolSpec } from "./types.js";

export const genericFormat: ChatFormat = {
  id: "generic",
  templateHandlesTools: false,
  markers: [...THINK_MARKERS],
  toolGrammar: (tools, choice, parallel, reasoning) =>
    buildToolGrammar(tools, choice, parallel, reasoning, ({ b, tools: allowed, optional, parallel: many }) => {
      const sp = b.space();
      const call = callObjectRule(b, allowed, "arguments");
      const member = many
        ? jsonMember(b, "tool_calls", `"[" ${sp} ${repeatCalls(call, `"," ${sp}`, true)} ${sp} "]"`)
        : jsonMember(b, "tool_call", call);
      const callAnswer = b.rule("call-answer", `"{" ${sp} ${member} ${sp} "}"`);
      if (!optional) return `${sp} ${callAnswer} ${sp}`;
      const text = b.schema({ type: "string" }, "response-text");
      const response = b.rule("response-answer", `"{" ${sp} ${jsonMember(b, "response", text)} ${sp} "}"`);
      return `${sp} ( ${callAnswer} | ${response} ) ${sp}`;
    }),
  createParser: (options) => composeParser(options, () => new GenericOutputParser(options.newId)),
};

/**
 * The system prompt text that describes the tools and the JSON answer shapes to a model whose
 * template knows no tools ("" for mode none, when no tools are offered).
 */
export function genericToolsSystemPrompt(tools: ToolSpec[], choice: ToolChoice, parallel: boolean): string {
  const allowed = allowedTools(tools, choice);
  if (allowed.length === 0) return "";
  const described = allowed.map((t) => ({
    name: t.name,
    ...(t.description !== undefined ? { description: t.description } : {}),
    parameters: t.parameters ?? { type: "object" },
  }));
  const callShape = parallel
    ? '{"tool_calls": [{"name": "<tool name>", "arguments": {<arguments>}}, ...]} (one or more calls)'
    : '{"tool_call": {"name": "<tool name>", "arguments": {<arguments>}}}';
  const lines = [
    "You have access to these tools (JSON Schema of each tool's arguments):",
    JSON.stringify(described, null, 2),
    "",
    "Answer with a single JSON object and nothing else.",
  ];
  if (choice.mode === "auto") {
    lines.push(`To call a tool, answer ${callShape}.`, 'To reply to the user directly, answer {"response": "<your reply>"}.');
  } else {
    const which = choice.mode === "function" ? `the tool "${choice.name}"` : "one of the tools";
    lines.push(`You must call ${which}: answer ${callShape}.`);
  }
  return lines.join("\n");
}

