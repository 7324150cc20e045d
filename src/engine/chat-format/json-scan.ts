/**
 * Finding where a JSON value ends in streamed text, and the raw spans of a parsed object's members
 * (so a call's arguments keep the exact text the model wrote).
 */

import { skipWhitespace } from "./markers.js";

export type ScanResult = { status: "done"; end: number } | { status: "incomplete" } | { status: "invalid" };

const CLOSER: Record<string, string> = { "{": "}", "[": "]" };

/**
 * Scans one JSON object or array (after optional whitespace) incrementally: the text it is given
 * only grows, and each call resumes where the last one stopped. It checks bracket nesting and
 * strings only; the caller parses the completed span.
 */
export class JsonValueScanner {
  private pos = -1;
  private readonly stack: string[] = [];
  private inString = false;
  private escaped = false;

  constructor(private readonly openers: string) {}

  advance(text: string, start: number): ScanResult {
    if (this.pos < 0) {
      const first = skipWhitespace(text, start);
      if (first >= text.length) return { status: "incomplete" };
      const ch = text[first]!;
      if (!this.openers.includes(ch)) return { status: "invalid" };
      this.stack.push(CLOSER[ch]!);
      this.pos = first + 1;
    }
    for (; this.pos < text.length; this.pos++) {
      const ch = text[this.pos]!;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (ch === "\\") this.escaped = true;
        else if (ch === '"') this.inString = false;
        continue;
      }
      if (ch === '"') this.inString = true;
      else if (ch === "{" || ch === "[") this.stack.push(CLOSER[ch]!);
      else if (ch === "}" || ch === "]") {
        if (this.stack.pop() !== ch) return { status: "invalid" };
        if (this.stack.length === 0) return { status: "done", end: this.pos + 1 };
      }
    }
    return { status: "incomplete" };
  }
}

/** End of the JSON value starting at `start` in text already known to be valid JSON. */
function validValueEnd(text: string, start: number): number {
  const ch = text[start]!;
  if (ch === "{" || ch === "[") {
    const result = new JsonValueScanner(ch).advance(text, start);
    if (result.status !== "done") throw new Error("unbalanced JSON in a parsed value");
    return result.end;
  }
  if (ch === '"') {
    let i = start + 1;
    while (text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
    return i + 1;
  }
  let i = start;
  while (i < text.length && !",}] \t\r\n".includes(text[i]!)) i++;
  return i;
}

export interface Span {
  start: number;
  end: number;
}

/** Raw spans of the members of a valid JSON object text (a repeated key keeps its last value, as JSON.parse does). */
export function objectMemberSpans(text: string): Map<string, Span> {
  const spans = new Map<string, Span>();
  let i = skipWhitespace(text, skipWhitespace(text) + 1);
  while (text[i] === '"') {
    const keyEnd = validValueEnd(text, i);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    const valueStart = skipWhitespace(text, skipWhitespace(text, keyEnd) + 1);
    const valueEnd = validValueEnd(text, valueStart);
    spans.set(key, { start: valueStart, end: valueEnd });
    i = skipWhitespace(text, valueEnd);
    if (text[i] === ",") i = skipWhitespace(text, i + 1);
  }
  return spans;
}

/** Raw spans of the elements of a valid JSON array text. */
export function arrayElementSpans(text: string): Span[] {
  const spans: Span[] = [];
  let i = skipWhitespace(text, skipWhitespace(text) + 1);
  while (i < text.length && text[i] !== "]") {
    const end = validValueEnd(text, i);
    spans.push({ start: i, end });
    i = skipWhitespace(text, end);
    if (text[i] === ",") i = skipWhitespace(text, i + 1);
  }
  return spans;
}

/** JSON.parse that answers undefined for invalid text. */
export function tryParseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
