/**
 * Separates a leading `<think>…</think>` block from the rest of the output, which goes on to the
 * format's own parser. Whitespace right after `<think>`, before `</think>` and right after it is
 * trimmed; while streaming, whitespace that may turn out to be trimmed is held back.
 */

import { emitContent } from "./stepped-parser.js";
import { safeTextEnd, skipWhitespace, THINK_CLOSE, THINK_OPEN, trailingWhitespaceStart } from "./markers.js";
import type { OutputParser, ParseEvent } from "./types.js";

type State = "start" | "reasoning" | "afterReasoning" | "body";

export class ReasoningSplitter implements OutputParser {
  private state: State;
  private buf = "";
  /** Still at the start of the reasoning text, where whitespace is trimmed. */
  private reasoningStart = true;

  constructor(
    private readonly body: OutputParser,
    startsInReasoning: boolean,
  ) {
    this.state = startsInReasoning ? "reasoning" : "start";
  }

  push(text: string): ParseEvent[] {
    if (this.state === "body") return this.body.push(text);
    this.buf += text;
    return this.run(false);
  }

  end(): ParseEvent[] {
    return [...this.run(true), ...this.body.end()];
  }

  private run(final: boolean): ParseEvent[] {
    const events: ParseEvent[] = [];
    while (this.state !== "body" && this.step(events, final));
    if (this.state === "body" && this.buf !== "") {
      events.push(...this.body.push(this.buf));
      this.buf = "";
    }
    return events;
  }

  private step(events: ParseEvent[], final: boolean): boolean {
    if (this.state === "start") {
      const rest = this.buf.slice(skipWhitespace(this.buf));
      if (rest.startsWith(THINK_OPEN)) {
        this.buf = rest.slice(THINK_OPEN.length);
        this.state = "reasoning";
        return true;
      }
      if (!final && THINK_OPEN.startsWith(rest)) return false;
      this.state = "body";
      return false;
    }
    if (this.state === "reasoning") {
      if (this.reasoningStart) {
        this.buf = this.buf.slice(skipWhitespace(this.buf));
        if (this.buf === "") return false;
        this.reasoningStart = false;
      }
      const at = this.buf.indexOf(THINK_CLOSE);
      if (at >= 0) {
        emitReasoning(events, this.buf.slice(0, trailingWhitespaceStart(this.buf, at)));
        this.buf = this.buf.slice(at + THINK_CLOSE.length);
        this.state = "afterReasoning";
        return true;
      }
      // At the end an unclosed block is all reasoning; a dangling partial `</think>` stays in it.
      const keep = final ? trailingWhitespaceStart(this.buf) : safeTextEnd(this.buf, THINK_CLOSE);
      emitReasoning(events, this.buf.slice(0, keep));
      this.buf = final ? "" : this.buf.slice(keep);
      return false;
    }
    // afterReasoning
    this.buf = this.buf.slice(skipWhitespace(this.buf));
    if (this.buf === "") return false;
    this.state = "body";
    return false;
  }
}

function emitReasoning(events: ParseEvent[], text: string): void {
  if (text !== "") events.push({ type: "reasoning", text });
}

/** Plain content: what the body of an output is when no tools were offered. */
export class ContentParser implements OutputParser {
  push(text: string): ParseEvent[] {
    const events: ParseEvent[] = [];
    emitContent(events, text);
    return events;
  }

  end(): ParseEvent[] {
    return [];
  }
}
