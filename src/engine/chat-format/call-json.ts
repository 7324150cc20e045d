/** Reading tool calls out of the JSON text a model wrote. */

import { arrayElementSpans, isPlainObject, objectMemberSpans, tryParseJson } from "./json-scan.js";

/** A call as the model wrote it; the parser assigns its id (or keeps a valid one the model wrote). */
export interface RawCall {
  name: string;
  /** JSON object text. */
  arguments: string;
  id?: string;
}

/** The arguments text when `text` is a JSON object (trimmed, as written), else undefined. */
export function objectArgumentsText(text: string): string | undefined {
  return isPlainObject(tryParseJson(text)) ? text.trim() : undefined;
}

/**
 * The call a JSON object text describes: `{"name": "...", <argsKey>: {...}}`, where the arguments
 * may also be a string holding a JSON object (some models stringify them) or absent (`{}`).
 * Undefined when it is not a call.
 */
export function callFromObjectText(text: string, argsKeys: readonly string[]): RawCall | undefined {
  const value = tryParseJson(text);
  if (!isPlainObject(value) || typeof value.name !== "string" || value.name === "") return undefined;
  const key = argsKeys.find((k) => Object.hasOwn(value, k));
  let args = "{}";
  if (key !== undefined) {
    const raw = value[key];
    if (isPlainObject(raw)) {
      const span = objectMemberSpans(text).get(key)!;
      args = text.slice(span.start, span.end);
    } else if (typeof raw === "string" && objectArgumentsText(raw) !== undefined) {
      args = raw.trim();
    } else {
      return undefined;
    }
  }
  return { name: value.name, arguments: args, ...(typeof value.id === "string" ? { id: value.id } : {}) };
}

/** The calls a JSON array of call objects describes; undefined when any element is not a call. */
export function callsFromArrayText(text: string, argsKeys: readonly string[]): RawCall[] | undefined {
  if (!Array.isArray(tryParseJson(text))) return undefined;
  const calls: RawCall[] = [];
  for (const span of arrayElementSpans(text)) {
    const call = callFromObjectText(text.slice(span.start, span.end), argsKeys);
    if (!call) return undefined;
    calls.push(call);
  }
  return calls.length > 0 ? calls : undefined;
}

/** A single call as a list, undefined staying undefined. */
export function asList<T>(value: T | undefined): T[] | undefined {
  return value === undefined ? undefined : [value];
}

/** The calls in one JSON value: a call object or a list of them. */
export function callsFromJsonText(text: string, argsKeys: readonly string[]): RawCall[] | undefined {
  return text.trimStart().startsWith("[") ? callsFromArrayText(text, argsKeys) : asList(callFromObjectText(text, argsKeys));
}
