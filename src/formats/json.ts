import { readFileSync } from "node:fs";
import { FormatError } from "./errors.js";

/**
 * Deepest nesting accepted in model JSON (configs, tokenizers, SafeTensors headers nest a handful
 * of levels). JSON.parse copes with any depth, but JSON.stringify, util.inspect and every
 * recursive walk over the value overflow the stack on a file nested thousands deep.
 */
export const MAX_JSON_DEPTH = 256;

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** The deepest nesting of objects and arrays in `text` (strings skipped), stopping once past `limit`. */
export function jsonDepth(text: string, limit = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return deepest;
}

/** JSON.parse with the nesting bounded; any failure is a FormatError naming the file (and `offset`, for embedded JSON). */
export function parseJsonText(text: string, file: string, what: string, offset?: number): unknown {
  if (jsonDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
    throw new FormatError(file, offset, `${what} is nested more than ${MAX_JSON_DEPTH} levels deep`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FormatError(file, offset, `invalid JSON in ${what}: ${(e as Error).message}`);
  }
}

/** Reads a JSON file that must hold an object; unreadable, malformed or too deep files are FormatErrors. */
export function readJsonObject(path: string, what = "the file"): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new FormatError(path, undefined, `cannot read: ${(e as Error).message}`);
  }
  const v = parseJsonText(text, path, what);
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new FormatError(path, undefined, `invalid JSON in ${what}: not a JSON object`);
  return v as Record<string, unknown>;
}
