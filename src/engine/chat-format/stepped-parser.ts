/** The base of the streaming parsers: text accumulates in a buffer that a state machine consumes. */

import type { RawCall } from "./call-json.js";
import type { OutputParser, ParseEvent } from "./types.js";

export abstract class SteppedParser implements OutputParser {
  protected buf = "";
  private callCount = 0;

  constructor(protected readonly newId: () => string) {}

  push(text: string): ParseEvent[] {
    this.buf += text;
    return this.run(false);
  }

  end(): ParseEvent[] {
    return this.run(true);
  }

  /** One transition; false when it must wait for more text (or, when final, is done). */
  protected abstract step(events: ParseEvent[], final: boolean): boolean;

  protected emitCall(events: ParseEvent[], call: RawCall, keepModelId = false): void {
    const index = this.callCount++;
    const id = keepModelId && call.id !== undefined ? call.id : this.newId();
    events.push({ type: "tool_call", index, id, name: call.name });
    events.push({ type: "tool_args", index, text: call.arguments });
  }

  private run(final: boolean): ParseEvent[] {
    const events: ParseEvent[] = [];
    while (this.step(events, final));
    return events;
  }
}

export function emitContent(events: ParseEvent[], text: string): void {
  if (text !== "") events.push({ type: "content", text });
}
