/**
 * Parses the generic fallback's JSON answer: `{"response": "..."}` streams the string's unescaped
 * text as content; `{"tool_call": {...}}` / `{"tool_calls": [...]}` become calls once complete.
 * Output that is not such an object is content as written.
 */

import { asList, callFromObjectText, callsFromArrayText, type RawCall } from "./call-json.js";
import { isPlainObject, JsonValueScanner, objectMemberSpans, tryParseJson } from "./json-scan.js";
import { readJsonStringChunk } from "./json-string-stream.js";
import { skipWhitespace } from "./markers.js";
import { emitContent, SteppedParser } from "./stepped-parser.js";
import type { ParseEvent } from "./types.js";

const ARGS_KEYS = ["arguments"];

/**
 * Matches the opening `{"response": "` (with any whitespace) against the start of `text`: the
 * index after it, "maybe" while `text` is still a prefix of it, or "no".
 */
function responseOpening(text: string): number | "maybe" | "no" {
  const parts = ["{", '"response"', ":", '"'];
  let i = 0;
  for (const part of parts) {
    i = skipWhitespace(text, i);
    const seen = text.slice(i, i + part.length);
    if (seen !== part) return part.startsWith(seen) && i + seen.length === text.length ? "maybe" : "no";
    i += part.length;
  }
  return i;
}

type State = "start" | "object" | "response" | "responseEnd" | "afterObject" | "text";

export class GenericOutputParser extends SteppedParser {
  private state: State = "start";
  private readonly scanner = new JsonValueScanner("{");

  protected step(events: ParseEvent[], final: boolean): boolean {
    switch (this.state) {
      case "start": {
        const opening = responseOpening(this.buf);
        if (typeof opening === "number") {
          this.buf = this.buf.slice(opening);
          this.state = "response";
          return true;
        }
        if (opening === "maybe" && !final) return false;
        const first = skipWhitespace(this.buf);
        if (first === this.buf.length && !final) return false;
        this.state = this.buf[first] === "{" ? "object" : "text";
        return true;
      }
      case "response": {
        const chunk = readJsonStringChunk(this.buf);
        emitContent(events, chunk.text);
        this.buf = this.buf.slice(chunk.consumed);
        if (chunk.closed) {
          this.state = "responseEnd";
          return true;
        }
        // An unfinished string at the end: what was decoded is the answer; a cut escape is dropped.
        if (final) this.buf = "";
        return false;
      }
      case "responseEnd": {
        // The object's closing brace is dropped; anything else after the string is content.
        const rest = this.buf.slice(skipWhitespace(this.buf));
        if (rest === "" && !final) return false;
        this.buf = rest.startsWith("}") ? rest.slice(1) : rest;
        this.state = "afterObject";
        return true;
      }
      case "object": {
        const scan = this.scanner.advance(this.buf, 0);
        if (scan.status === "incomplete" && !final) return false;
        if (scan.status !== "done") {
          this.state = "text";
          return true;
        }
        const json = this.buf.slice(0, scan.end);
        if (!this.emitObject(events, json)) emitContent(events, json);
        this.buf = this.buf.slice(scan.end);
        this.state = "afterObject";
        return true;
      }
      case "afterObject": {
        const rest = this.buf.slice(skipWhitespace(this.buf));
        if (rest === "") {
          if (final) this.buf = "";
          return false;
        }
        this.buf = rest; // trailing text after the object is content as written
        this.state = "text";
        return true;
      }
      case "text":
        emitContent(events, this.buf);
        this.buf = "";
        return false;
    }
  }

  /** Emits what a complete JSON object means; false when it is none of the three shapes. */
  private emitObject(events: ParseEvent[], json: string): boolean {
    const value = tryParseJson(json);
    if (!isPlainObject(value)) return false;
    const spans = objectMemberSpans(json);
    const member = (key: string) => json.slice(spans.get(key)!.start, spans.get(key)!.end);
    let calls: RawCall[] | undefined;
    if (Object.hasOwn(value, "tool_call")) calls = asList(callFromObjectText(member("tool_call"), ARGS_KEYS));
    else if (Object.hasOwn(value, "tool_calls")) calls = callsFromArrayText(member("tool_calls"), ARGS_KEYS);
    else if (typeof value.response === "string") {
      emitContent(events, value.response);
      return true;
    }
    if (!calls) return false;
    for (const call of calls) this.emitCall(events, call);
    return true;
  }
}
