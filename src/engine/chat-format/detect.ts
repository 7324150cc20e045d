/** Which tool-call and reasoning format a model's chat template (Jinja source) implies. */

import { genericFormat } from "./generic.js";
import { hermesFormat } from "./hermes.js";
import { llama3Format } from "./llama3.js";
import { THINK_CLOSE, THINK_OPEN } from "./markers.js";
import { mistralArgsFormat, mistralFormat } from "./mistral.js";
import type { ChatFormat, ReasoningMode } from "./types.js";

/** Call syntaxes that wrap XML-like parameters in `<tool_call>` (Qwen3-Coder, GLM, MiniMax): not hermes JSON. */
const XML_CALL_SYNTAX = /<function=|<arg_key>|<invoke /;
/** A JSON `"name"` key as a template writes it, in a string literal (`\"name\"`) or verbatim. */
const JSON_NAME_KEY = /\\?"name\\?"/;

/**
 * The format from the template source, checked most specific first:
 * `[TOOL_CALLS]` → mistral (mistral-args when it also knows `[ARGS]`); `<tool_call>` with a JSON
 * call → hermes; the Llama 3 header format with its `ipython` role or `<|python_tag|>` → llama3;
 * anything else (no template, no tools, or a tool syntax Shimmy does not parse) → generic.
 */
export function detectChatFormat(template: string | undefined): ChatFormat {
  const src = template ?? "";
  if (src.includes("[TOOL_CALLS]")) return src.includes("[ARGS]") ? mistralArgsFormat : mistralFormat;
  if (src.includes("<tool_call>") && JSON_NAME_KEY.test(src) && !XML_CALL_SYNTAX.test(src)) return hermesFormat;
  const llama3Tools = src.includes("<|python_tag|>") || src.includes("ipython");
  if (src.includes("<|start_header_id|>") && llama3Tools && /\btools\b/.test(src) && !XML_CALL_SYNTAX.test(src)) {
    return llama3Format;
  }
  return genericFormat;
}

/** "think-tags" when the template writes `<think>` or the vocabulary has both think tokens. */
export function detectReasoning(template: string | undefined, vocabularyHasThinkTokens: boolean): ReasoningMode {
  return (template ?? "").includes(THINK_OPEN) || vocabularyHasThinkTokens ? "think-tags" : "none";
}

/**
 * Whether a rendered prompt leaves the model inside a reasoning block: its last `<think>` is not
 * closed (DeepSeek-R1 templates end the prompt with "<think>\n").
 */
export function promptOpensReasoning(renderedPrompt: string, mode: ReasoningMode): boolean {
  if (mode === "none") return false;
  const open = renderedPrompt.lastIndexOf(THINK_OPEN);
  return open >= 0 && renderedPrompt.indexOf(THINK_CLOSE, open) < 0;
}
