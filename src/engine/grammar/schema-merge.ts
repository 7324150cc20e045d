/** allOf support: merges several schemas into one where that is exact, else refuses by name. */
import { InvalidSchemaError, UnsupportedSchemaError } from "./schema-errors.js";
import { ANNOTATION_KEYWORDS, DEFINITION_KEYWORDS } from "./schema-keywords.js";

export type SchemaObject = Record<string, unknown>;

export function isSchemaObject(value: unknown): value is SchemaObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function own(schema: SchemaObject, key: string): unknown {
  return Object.hasOwn(schema, key) ? schema[key] : undefined;
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const aKeys = Object.keys(a);
  const bKeys = Object.keys(b);
  if (aKeys.length !== bKeys.length) return false;
  return aKeys.every((key) => Object.hasOwn(b, key) && deepEqual((a as SchemaObject)[key], (b as SchemaObject)[key]));
}

const LOWER_BOUNDS = new Set(["minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"]);
const UPPER_BOUNDS = new Set(["maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"]);

function typeList(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : [String(value)];
}

function intersectTypes(a: unknown, b: unknown, path: string): string[] {
  const right = typeList(b);
  const result = new Set<string>();
  for (const type of typeList(a)) {
    if (right.includes(type)) result.add(type);
    else if (type === "integer" && right.includes("number")) result.add("integer");
    else if (type === "number" && right.includes("integer")) result.add("integer");
  }
  if (result.size === 0) throw new InvalidSchemaError(path, "allOf members allow no common type");
  return [...result];
}

/** JSON text with object keys sorted: equal for deep-equal values. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))) : v));
}

/** The values two enums share, in linear time (enums can hold tens of thousands of values). */
function intersectValues(a: unknown, b: unknown): unknown[] {
  const left = Array.isArray(a) ? a : [];
  const right = new Set((Array.isArray(b) ? b : []).map(canonical));
  return left.filter((value) => right.has(canonical(value)));
}

/** Combines one keyword's values from two allOf members. */
function combine(keyword: string, a: unknown, b: unknown, path: string): unknown {
  if (deepEqual(a, b)) return a;
  if (LOWER_BOUNDS.has(keyword) && typeof a === "number" && typeof b === "number") return Math.max(a, b);
  if (UPPER_BOUNDS.has(keyword) && typeof a === "number" && typeof b === "number") return Math.min(a, b);
  switch (keyword) {
    case "type":
      return intersectTypes(a, b, path);
    case "enum":
      return intersectValues(a, b);
    case "required":
      return [...new Set([...(Array.isArray(a) ? a : []), ...(Array.isArray(b) ? b : [])])];
    case "properties": {
      const merged: SchemaObject = { ...(a as SchemaObject) };
      for (const [name, schema] of Object.entries(b as SchemaObject)) {
        merged[name] = Object.hasOwn(merged, name) ? { allOf: [merged[name], schema] } : schema;
      }
      return merged;
    }
    case "additionalProperties":
    case "items":
      if (a === false || b === false) return false;
      if (a === true) return b;
      if (b === true) return a;
      if (isSchemaObject(a) && isSchemaObject(b)) return { allOf: [a, b] };
  }
  throw new UnsupportedSchemaError("allOf", path, `members disagree on '${keyword}' and cannot be merged`);
}

/**
 * Merges schema objects (already flattened: no $ref or allOf at their top) into one.
 * Exact for what it accepts: an additionalProperties limit of one member must not reject another member's properties.
 */
export function mergeSchemas(members: readonly SchemaObject[], path: string): SchemaObject {
  const merged: SchemaObject = {};
  for (const member of members) {
    for (const [keyword, value] of Object.entries(member)) {
      if (ANNOTATION_KEYWORDS.has(keyword) || DEFINITION_KEYWORDS.has(keyword)) continue;
      const normalized = keyword === "const" ? [value] : value;
      const key = keyword === "const" ? "enum" : keyword;
      merged[key] = Object.hasOwn(merged, key) ? combine(key, merged[key], normalized, path) : normalized;
    }
  }
  const mergedNames = Object.keys(isSchemaObject(merged.properties) ? merged.properties : {});
  for (const member of members) {
    const limit = own(member, "additionalProperties");
    if (limit === undefined || limit === true) continue;
    const declared = isSchemaObject(member.properties) ? member.properties : {};
    const rejected = mergedNames.find((name) => !Object.hasOwn(declared, name));
    if (rejected !== undefined) {
      throw new UnsupportedSchemaError("allOf", path, `one member's additionalProperties rejects property '${rejected}' of another`);
    }
  }
  return merged;
}
