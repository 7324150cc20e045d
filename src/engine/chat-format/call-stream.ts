/**
 * The streaming parser shared by the marker formats (hermes, llama3, mistral, mistral-args): text
 * streams out as content until a call marker; a call is emitted once its text is complete and
 * valid, so a call that turns out malformed or unfinished can still be given back as content.
 */

import type { RawCall } from "./call-json.js";
import { JsonValueScanner } from "./json-scan.js";
import { partialMarkerLength, skipWhitespace } from "./markers.js";
import { emitContent, SteppedParser } from "./stepped-parser.js";
import type { ParseEvent } from "./types.js";

export type BodyResult = { status: "incomplete" } | { status: "invalid" } | { status: "done"; calls: RawCall[]; end: number };

/** Reads one call body (the text after the marker); the text it is given only grows. */
export type BodyReader = (body: string) => BodyResult;

export interface CallSyntax {
  /** Marker opening a call (or a list of calls). */
  trigger: string;
  /** Marker closing a call, consumed when it follows the call (after whitespace). */
  closing?: string;
  /** Separator allowed between consecutive calls. */
  separator?: string;
  /** A call may also open with a bare "{" at the start of the output and right after a call. */
  bareCallStart: boolean;
  /** A fresh reader for one call body. */
  newBodyReader(): BodyReader;
  /** Whether an id the model wrote is kept as the call's id. */
  keepsModelId?(id: string): boolean;
}

/** A body reader for one JSON value holding a call object (or, where `[` opens too, a list of them). */
export function jsonCallReader(openers: string, toCalls: (json: string) => RawCall[] | undefined): () => BodyReader {
  return () => {
    const scanner = new JsonValueScanner(openers);
    return (body) => {
      const scan = scanner.advance(body, 0);
      if (scan.status !== "done") return scan;
      const calls = toCalls(body.slice(0, scan.end));
      return calls ? { status: "done", calls, end: scan.end } : { status: "invalid" };
    };
  };
}

type State = "start" | "text" | "body" | "afterCall";

export class CallStreamParser extends SteppedParser {
  private state: State;
  /** The marker text that opened the current body: content again if the body is not a call. */
  private opener = "";
  private readBody: BodyReader | undefined;
  private closed = false;
  private separated = false;

  constructor(
    private readonly syntax: CallSyntax,
    newId: () => string,
  ) {
    super(newId);
    this.state = syntax.bareCallStart ? "start" : "text";
  }

  protected step(events: ParseEvent[], final: boolean): boolean {
    switch (this.state) {
      case "start":
        return this.stepStart(final);
      case "text":
        return this.stepText(events, final);
      case "body":
        return this.stepBody(events, final);
      case "afterCall":
        return this.stepAfterCall(final);
    }
  }

  private stepStart(final: boolean): boolean {
    const i = skipWhitespace(this.buf);
    if (i === this.buf.length) {
      // Only whitespace so far: held until it is known whether a call opens next.
      if (!final) return false;
      this.state = "text";
      return true;
    }
    if (this.buf[i] === "{") this.enterBody("", this.buf.slice(i));
    else this.state = "text";
    return true;
  }

  private stepText(events: ParseEvent[], final: boolean): boolean {
    const { trigger } = this.syntax;
    const at = this.buf.indexOf(trigger);
    if (at >= 0) {
      emitContent(events, this.buf.slice(0, at));
      this.enterBody(trigger, this.buf.slice(at + trigger.length));
      return true;
    }
    const keep = final ? this.buf.length : this.buf.length - partialMarkerLength(this.buf, trigger);
    emitContent(events, this.buf.slice(0, keep));
    this.buf = this.buf.slice(keep);
    return false;
  }

  private stepBody(events: ParseEvent[], final: boolean): boolean {
    const result = this.readBody!(this.buf);
    if (result.status === "done") {
      for (const call of result.calls) this.emitCall(events, call, call.id !== undefined && this.syntax.keepsModelId?.(call.id));
      this.buf = this.buf.slice(result.end);
      this.state = "afterCall";
      this.closed = false;
      this.separated = false;
      return true;
    }
    if (result.status === "incomplete" && !final) return false;
    // Not a call (or unfinished at the end): the marker and the body are text after all.
    emitContent(events, this.opener);
    this.state = "text";
    return true;
  }

  private stepAfterCall(final: boolean): boolean {
    const { closing, separator, trigger, bareCallStart } = this.syntax;
    const rest = this.buf.slice(skipWhitespace(this.buf));
    const couldBecome = (marker: string | undefined) => !final && marker !== undefined && marker.startsWith(rest);
    if (rest === "") {
      if (final) this.buf = "";
      return false;
    }
    if (closing !== undefined && !this.closed) {
      if (rest.startsWith(closing)) {
        this.buf = rest.slice(closing.length);
        this.closed = true;
        return true;
      }
      if (couldBecome(closing)) return false;
    }
    if (separator !== undefined && !this.separated && rest.startsWith(separator)) {
      this.buf = rest.slice(separator.length);
      this.separated = true;
      return true;
    }
    if (bareCallStart && rest[0] === "{") {
      this.enterBody("", rest);
      return true;
    }
    if (couldBecome(trigger)) return false;
    // Whitespace after a call is not content; what follows it is text (or the next marker).
    this.buf = rest;
    this.state = "text";
    return true;
  }

  private enterBody(opener: string, body: string): void {
    this.state = "body";
    this.opener = opener;
    this.buf = body;
    this.readBody = this.syntax.newBodyReader();
  }
}
