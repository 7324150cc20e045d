/** Running a format's parser over a whole output, and folding events into the parsed result. */

import type { ChatFormat, ParsedOutput, ParseEvent, ParserOptions } from "./types.js";

/** Folds an event stream into content, reasoning and calls (arguments joined from their fragments). */
export function collectEvents(events: Iterable<ParseEvent>): ParsedOutput {
  const out: ParsedOutput = { content: "", reasoning: "", toolCalls: [] };
  for (const event of events) {
    switch (event.type) {
      case "content":
        out.content += event.text;
        break;
      case "reasoning":
        out.reasoning += event.text;
        break;
      case "tool_call":
        out.toolCalls[event.index] = { id: event.id, name: event.name, arguments: "" };
        break;
      case "tool_args":
        out.toolCalls[event.index]!.arguments += event.text;
        break;
    }
  }
  return out;
}

export function parseOutput(format: ChatFormat, text: string, options: ParserOptions): ParsedOutput {
  const parser = format.createParser(options);
  return collectEvents([...parser.push(text), ...parser.end()]);
}
