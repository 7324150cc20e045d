/** GBNF pieces the formats' tool grammars are made of, on top of the JSON-Schema grammar builder. */

import { GbnfBuilder } from "../grammar/json-schema-gbnf.js";
import { THINK_CLOSE, THINK_OPEN } from "./markers.js";
import { UnknownToolChoiceError, type GrammarReasoning, type ToolChoice, type ToolSpec } from "./types.js";

/** Any character the tokenizer can produce. */
export const ANY_CHAR = "[^\\x00]";

/** A character escaped for use inside a GBNF character class. */
function classChar(ch: string): string {
  if (/^[A-Za-z0-9 _]$/.test(ch)) return ch;
  const code = ch.codePointAt(0)!;
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
}

/** KMP transitions: after `k` characters of `marker` matched, the match length after reading `ch`. */
function kmpTable(marker: string): Array<Map<string, number>> {
  const chars = [...new Set(marker)];
  const prefix = new Array<number>(marker.length).fill(0);
  for (let i = 1, k = 0; i < marker.length; i++) {
    while (k > 0 && marker[i] !== marker[k]) k = prefix[k - 1]!;
    if (marker[i] === marker[k]) k++;
    prefix[i] = k;
  }
  const table: Array<Map<string, number>> = [];
  for (let state = 0; state < marker.length; state++) {
    const row = new Map<string, number>();
    for (const ch of chars) {
      if (marker[state] === ch) row.set(ch, state + 1);
      else row.set(ch, state === 0 ? 0 : table[prefix[state - 1]!]!.get(ch)!);
    }
    table.push(row);
  }
  return table;
}

/**
 * A rule matching any text that does not contain `marker` (ending in a proper prefix of it
 * included): one rule per state of the marker's KMP automaton, so a marker character that
 * reappears (as in "<<tool_call>") is still caught. Called first on a fresh builder, since the
 * rules refer to each other by name before they exist.
 */
export function textWithout(b: GbnfBuilder, marker: string, nameHint: string): string {
  const table = kmpTable(marker);
  const names = table.map((_, state) => `${nameHint}-s${state}`);
  table.forEach((row, state) => {
    const alternatives: string[] = [];
    const special: string[] = [];
    for (const [ch, next] of row) {
      if (next === 0) continue;
      special.push(classChar(ch));
      if (next < marker.length) alternatives.push(`${GbnfBuilder.literal(ch)} ${names[next]}`);
    }
    alternatives.unshift(`[^${special.join("")}\\x00] ${names[0]}`);
    const name = b.rule(names[state]!, `( ${alternatives.join(" | ")} )?`);
    if (name !== names[state]) throw new Error(`grammar rule ${names[state]} was already taken`);
  });
  return names[0]!;
}

/**
 * The reasoning block the grammar lets through before the answer: optional `<think>…</think>`,
 * or, when the prompt already opened it, the rest of the block up to `</think>`.
 */
export function reasoningPrefix(b: GbnfBuilder, reasoning: GrammarReasoning | undefined): string {
  if (!reasoning || reasoning.mode === "none") return "";
  const inside = textWithout(b, THINK_CLOSE, "reasoning-text");
  const close = `${inside} ${GbnfBuilder.literal(THINK_CLOSE)} ${b.space()}`;
  if (reasoning.startsInReasoning) return close;
  return `( ${b.space()} ${GbnfBuilder.literal(THINK_OPEN)} ${close} )?`;
}

/** The tools a choice allows (all for auto/required, the named one for function); [] = unconstrained. */
export function allowedTools(tools: ToolSpec[], choice: ToolChoice): ToolSpec[] {
  if (choice.mode === "none") return [];
  if (choice.mode !== "function") return tools;
  const named = tools.filter((t) => t.name === choice.name);
  if (named.length === 0) throw new UnknownToolChoiceError(choice.name);
  return named;
}

/** A JSON member `"key": value` with the builder's optional whitespace around the colon. */
export function jsonMember(b: GbnfBuilder, key: string, valueRule: string): string {
  return `${GbnfBuilder.literal(JSON.stringify(key))} ${b.space()} ":" ${b.space()} ${valueRule}`;
}

/** The rule for a tool's arguments: its parameters schema, or any object when it has none. */
export function argumentsRule(b: GbnfBuilder, tool: ToolSpec): string {
  return tool.parameters === undefined ? b.anyObject() : b.schema(tool.parameters, `${tool.name}-args`);
}

/**
 * A call object per tool, as alternatives: `{"name": "<name>", "<argsKey>": <arguments>}` plus
 * any extra members (already rendered GBNF) the format writes after them.
 */
export function callObjectRule(b: GbnfBuilder, tools: ToolSpec[], argsKey: string, extraMembers = ""): string {
  const perTool = tools.map((tool) => {
    const name = jsonMember(b, "name", GbnfBuilder.literal(JSON.stringify(tool.name)));
    const args = jsonMember(b, argsKey, argumentsRule(b, tool));
    const sp = b.space();
    return b.rule(`${tool.name}-call`, `"{" ${sp} ${name} ${sp} "," ${sp} ${args} ${extraMembers} ${sp} "}"`);
  });
  return b.rule("call", perTool.join(" | "));
}

/** One call, or one or more separated by `separator` when parallel. */
export function repeatCalls(call: string, separator: string, parallel: boolean): string {
  return parallel ? `${call} ( ${separator} ${call} )*` : call;
}
