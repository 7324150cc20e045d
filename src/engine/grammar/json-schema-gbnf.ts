/**
 * JSON Schema → llama.cpp GBNF grammar, for structured output (response_format, Ollama `format`,
 * llama-server `json_schema`, tool-call arguments). Behaviour follows llama.cpp's
 * common/json-schema-to-grammar.cpp, but every keyword we cannot enforce is refused by name.
 * docs/structured-output.md lists what is enforced.
 */
import { gbnfLiteral, integerRange } from "./gbnf-text.js";
import { GbnfRules, MAX_GRAMMAR_CHARS, MAX_REPEAT_BOUND } from "./gbnf-rules.js";
import { extraKeyRule } from "./extra-keys.js";
import { InvalidSchemaError, UnsupportedSchemaError } from "./schema-errors.js";
import { deepEqual, isSchemaObject, mergeSchemas, own, type SchemaObject } from "./schema-merge.js";
import { constraintKeywords, JSON_TYPES, REFUSED_KEYWORDS, TYPE_KEYWORDS, type JsonType } from "./schema-keywords.js";

export { InvalidSchemaError, UnsupportedSchemaError } from "./schema-errors.js";

/** Deepest schema nesting we walk; deeper input is refused rather than risking the stack. */
export const MAX_SCHEMA_DEPTH = 100;
/** Bounds on numbers beyond this are refused: doubles lose integer precision past it. */
const SAFE_BOUND = Number.MAX_SAFE_INTEGER;
/** Numbers with bounds get integer parts of at most this magnitude, so fraction digits stay exact. */
const MAX_NUMBER_BOUND = 1e15;

const STRING_FORMATS: Readonly<Record<string, "date" | "time" | "date-time" | "uuid">> = {
  date: "date", time: "time", "date-time": "date-time", uuid: "uuid",
};

/** Where the walk is: for error paths, $ref resolution and left-recursion detection. */
interface WalkContext {
  readonly root: unknown;
  /** JSON pointer fragment of the schema being walked ("#" is the root). */
  readonly path: string;
  /** The keyword that led here (names the construct when nesting is too deep). */
  readonly keyword: string;
  readonly depth: number;
  /** $refs entered since the last consumed character: meeting one again is left recursion. */
  readonly headRefs: ReadonlySet<string>;
}

function pointerToken(key: string): string {
  return key.replace(/~/g, "~0").replace(/\//g, "~1");
}

function describe(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
}

function assertSchemaObject(schema: unknown, path: string): asserts schema is SchemaObject {
  if (schema === false) throw new InvalidSchemaError(path, "the schema `false` matches no value");
  if (!isSchemaObject(schema)) throw new InvalidSchemaError(path, `a schema must be an object or a boolean, not ${describe(schema)}`);
}

function nonNegativeInteger(schema: SchemaObject, keyword: string, path: string): number | undefined {
  const value = own(schema, keyword);
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw new InvalidSchemaError(path, `'${keyword}' must be a non-negative integer`);
  }
  if (value > MAX_REPEAT_BOUND) {
    throw new UnsupportedSchemaError(keyword, path, `bounds above ${MAX_REPEAT_BOUND} are not supported`);
  }
  return value;
}

function finiteNumber(schema: SchemaObject, keyword: string, path: string): number | undefined {
  const value = own(schema, keyword);
  if (value === undefined || typeof value === "boolean") return undefined;
  if (typeof value !== "number" || !Number.isFinite(value)) throw new InvalidSchemaError(path, `'${keyword}' must be a number`);
  return value;
}

const MAX_EXPANDED_MEMBERS = 10_000;

/** Builds one GBNF grammar out of rules; names are made unique. */
export class GbnfBuilder {
  private readonly rules: GbnfRules;
  private readonly refRules = new Map<unknown, Map<string, string>>();
  private where: { path: string; keyword: string } = { path: "#", keyword: "$schema" };
  /** allOf members and $ref targets expanded so far: refs inside allOf can double the work per level. */
  private expanded = 0;

  constructor() {
    this.rules = new GbnfRules((size) => {
      throw new UnsupportedSchemaError(this.where.keyword, this.where.path,
        `the grammar would exceed ${MAX_GRAMMAR_CHARS} characters (reached ${size})`);
    });
  }

  /** Adds the rules matching JSON values valid against `schema` (root document for local $ref is `schema` itself unless `root` is given); returns the rule name to reference. */
  schema(schema: unknown, nameHint: string, root?: unknown): string {
    const context: WalkContext = { root: root ?? schema, path: "#", keyword: "$schema", depth: 0, headRefs: new Set() };
    return this.visit(schema, nameHint, context);
  }

  /** Adds rules for any JSON value; returns the rule name. */
  anyValue(): string {
    return this.rules.primitive("value");
  }

  /** Adds rules for any JSON object; returns the rule name. */
  anyObject(): string {
    return this.rules.primitive("object");
  }

  /** Adds `name ::= body` (body is GBNF); returns the (made-unique) name. */
  rule(nameHint: string, body: string): string {
    return this.rules.rule(nameHint, body);
  }

  /** The optional JSON whitespace rule's name (llama.cpp-style bounded whitespace). */
  space(): string {
    return this.rules.space();
  }

  /** A GBNF string literal matching `text` exactly (escaped). */
  static literal(text: string): string {
    return gbnfLiteral(text);
  }

  /** The whole grammar text, with `root ::= rootBody` first. */
  build(rootBody: string): string {
    return this.rules.build(rootBody);
  }

  private child(context: WalkContext, keyword: string, tokens: readonly string[], consumed: boolean): WalkContext {
    const depth = context.depth + 1;
    const path = [context.path, ...tokens.map(pointerToken)].join("/");
    if (depth > MAX_SCHEMA_DEPTH) {
      throw new UnsupportedSchemaError(keyword, context.path, `schemas nested deeper than ${MAX_SCHEMA_DEPTH} levels are not supported`);
    }
    return { root: context.root, path, keyword, depth, headRefs: consumed ? new Set() : context.headRefs };
  }

  private visit(schema: unknown, hint: string, context: WalkContext): string {
    this.where = context;
    if (schema === true) return this.anyValue();
    assertSchemaObject(schema, context.path);
    for (const keyword of Object.keys(schema)) {
      if (REFUSED_KEYWORDS.has(keyword)) {
        throw new UnsupportedSchemaError(keyword, context.path, "a grammar cannot enforce it");
      }
    }
    if (Object.hasOwn(schema, "$ref")) {
      if (constraintKeywords(schema).length === 1) return this.ref(schema.$ref, hint, context);
      return this.visit(this.flatten(schema, context), hint, this.child(context, "$ref", [], false));
    }
    if (Object.hasOwn(schema, "allOf")) return this.visit(this.flatten(schema, context), hint, this.child(context, "allOf", [], false));
    if (Object.hasOwn(schema, "anyOf") || Object.hasOwn(schema, "oneOf")) return this.union(schema, hint, context);
    if (own(schema, "nullable") === true && Object.hasOwn(schema, "type")) {
      const { nullable: _nullable, ...rest } = schema;
      const value = this.visit(rest, hint, context);
      return this.rules.rule(`${hint}-nullable`, `${value} | ${this.rules.primitive("null")}`);
    }
    if (Object.hasOwn(schema, "const") || Object.hasOwn(schema, "enum")) return this.constants(schema, hint, context);
    const types = this.typesOf(schema, context);
    if (types === undefined) return this.anyValue();
    const alternatives = types.map((type) => this.typed(schema, type, types.length === 1 ? hint : `${hint}-${type}`, context));
    return alternatives.length === 1 ? alternatives[0]! : this.rules.rule(hint, alternatives.join(" | "));
  }

  /** allOf members and $ref targets merged into one schema object (its own $ref/allOf replaced by their content). */
  private flatten(schema: SchemaObject, context: WalkContext): SchemaObject {
    const members: SchemaObject[] = [];
    const collect = (member: unknown, memberContext: WalkContext): void => {
      if (member === true) return;
      if (++this.expanded > MAX_EXPANDED_MEMBERS) throw new UnsupportedSchemaError("allOf", memberContext.path, `the schema's allOf/$ref members expand to more than ${MAX_EXPANDED_MEMBERS}`);
      assertSchemaObject(member, memberContext.path);
      const { $ref: ref, allOf, ...rest } = member;
      if (ref !== undefined) {
        const { target, pointer } = this.resolve(ref, memberContext);
        collect(target, { ...this.child(memberContext, "$ref", [], false), path: pointer });
      }
      if (allOf !== undefined) {
        if (!Array.isArray(allOf)) throw new InvalidSchemaError(memberContext.path, "'allOf' must be an array");
        allOf.forEach((item, index) => collect(item, this.child(memberContext, "allOf", ["allOf", String(index)], false)));
      }
      for (const keyword of Object.keys(rest)) {
        if (REFUSED_KEYWORDS.has(keyword)) throw new UnsupportedSchemaError(keyword, memberContext.path, "a grammar cannot enforce it");
      }
      members.push(rest);
    };
    collect(schema, context);
    return mergeSchemas(members, context.path);
  }

  private union(schema: SchemaObject, hint: string, context: WalkContext): string {
    const keyword = Object.hasOwn(schema, "anyOf") ? "anyOf" : "oneOf";
    const { anyOf: _anyOf, oneOf: _oneOf, ...base } = schema;
    if (Object.hasOwn(schema, "anyOf") && Object.hasOwn(schema, "oneOf")) {
      throw new UnsupportedSchemaError("oneOf", context.path, "anyOf and oneOf in one schema are not supported");
    }
    const alternatives = schema[keyword];
    if (!Array.isArray(alternatives) || alternatives.length === 0) {
      throw new InvalidSchemaError(context.path, `'${keyword}' must be a non-empty array`);
    }
    const baseConstrains = constraintKeywords(base).length > 0;
    const rules = alternatives.map((alternative, index) => {
      const altContext = this.child(context, keyword, [keyword, String(index)], false);
      // Keywords beside anyOf apply to every alternative: merge them in.
      const altSchema = baseConstrains ? { allOf: [base, alternative] } : alternative;
      return this.visit(altSchema, `${hint}-${index}`, altContext);
    });
    return this.rules.rule(hint, rules.join(" | "));
  }

  private resolve(ref: unknown, context: WalkContext): { target: unknown; pointer: string } {
    if (typeof ref !== "string") throw new InvalidSchemaError(context.path, "'$ref' must be a string");
    if (!ref.startsWith("#")) {
      throw new UnsupportedSchemaError("$ref", context.path, `only local references (#/...) are supported, not '${ref.slice(0, 100)}'`);
    }
    if (ref.length > 1 && !ref.startsWith("#/")) {
      throw new UnsupportedSchemaError("$ref", context.path, "anchor references are not supported");
    }
    let target = context.root;
    const tokens = ref.length > 1 ? ref.slice(2).split("/") : [];
    for (const raw of tokens) {
      let token: string;
      try {
        token = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
      } catch {
        throw new InvalidSchemaError(context.path, `'$ref' ${ref.slice(0, 100)} is not a valid JSON pointer`);
      }
      if (Array.isArray(target) && /^(0|[1-9][0-9]*)$/.test(token) && Number(token) < target.length) {
        target = target[Number(token)];
      } else if (isSchemaObject(target) && Object.hasOwn(target, token)) {
        target = target[token];
      } else {
        throw new InvalidSchemaError(context.path, `'$ref' ${ref.slice(0, 100)} does not resolve`);
      }
    }
    return { target, pointer: ref };
  }

  private ref(ref: unknown, hint: string, context: WalkContext): string {
    const { target, pointer } = this.resolve(ref, context);
    if (context.headRefs.has(pointer)) {
      throw new UnsupportedSchemaError("$ref", context.path, `'${pointer.slice(0, 100)}' refers back to itself before any value text (left recursion)`);
    }
    let known = this.refRules.get(context.root);
    if (known === undefined) this.refRules.set(context.root, (known = new Map()));
    const existing = known.get(pointer);
    if (existing !== undefined) return existing;
    const name = this.rules.reserve(`ref-${pointer.split("/").pop() || hint}`);
    known.set(pointer, name);
    const targetContext = { ...this.child(context, "$ref", [], false), path: pointer, headRefs: new Set([...context.headRefs, pointer]) };
    this.rules.define(name, this.visit(target, `${name}-value`, targetContext));
    return name;
  }

  private typesOf(schema: SchemaObject, context: WalkContext): JsonType[] | undefined {
    const declared = own(schema, "type");
    let types: string[];
    if (declared === undefined) {
      types = Object.entries(TYPE_KEYWORDS).filter(([, keywords]) => keywords.some((k) => Object.hasOwn(schema, k))).map(([type]) => type);
      if (types.length === 0) return undefined;
    } else {
      types = Array.isArray(declared) ? [...declared] : [declared];
      if (types.length === 0 || !types.every((type) => (JSON_TYPES as readonly unknown[]).includes(type))) {
        throw new InvalidSchemaError(context.path, `'type' must be one of ${JSON_TYPES.join(", ")} or an array of them`);
      }
      if (own(schema, "nullable") === true) types.push("null");
    }
    const unique = new Set(types as JsonType[]);
    if (unique.has("number")) unique.delete("integer");
    return [...unique];
  }

  private constants(schema: SchemaObject, hint: string, context: WalkContext): string {
    const extra = constraintKeywords(schema).find((key) => !["const", "enum", "type", "nullable"].includes(key));
    if (extra !== undefined) {
      throw new UnsupportedSchemaError(extra, context.path, "constraints beside 'enum'/'const' are not supported");
    }
    let values: unknown[];
    if (Object.hasOwn(schema, "const")) {
      values = [schema.const];
      if (Object.hasOwn(schema, "enum")) values = values.filter((value) => Array.isArray(schema.enum) && schema.enum.some((e) => deepEqual(e, value)));
    } else {
      if (!Array.isArray(schema.enum)) throw new InvalidSchemaError(context.path, "'enum' must be an array");
      values = schema.enum;
    }
    const types = Object.hasOwn(schema, "type") ? this.typesOf(schema, context) : undefined;
    const allowed = values.filter((value) => types === undefined || types.some((type) => valueHasType(value, type)));
    if (allowed.length === 0) throw new InvalidSchemaError(context.path, "no value of 'enum'/'const' is allowed by the schema");
    const literals = [...new Set(allowed.map((value) => gbnfLiteral(JSON.stringify(value))))];
    return this.rules.rule(hint, literals.join(" | "));
  }

  private typed(schema: SchemaObject, type: JsonType, hint: string, context: WalkContext): string {
    switch (type) {
      case "null":
      case "boolean":
        return this.rules.primitive(type);
      case "integer":
        return this.integer(schema, hint, context);
      case "number":
        return this.number(schema, hint, context);
      case "string":
        return this.string(schema, hint, context);
      case "array":
        return this.array(schema, hint, context);
      case "object":
        return this.object(schema, hint, context);
    }
  }

  private integer(schema: SchemaObject, hint: string, context: WalkContext): string {
    const multipleOf = own(schema, "multipleOf");
    if (multipleOf !== undefined && multipleOf !== 1) throw new UnsupportedSchemaError("multipleOf", context.path, "only multipleOf 1 is supported for integers");
    let min: number | undefined;
    let max: number | undefined;
    const minimum = finiteNumber(schema, "minimum", context.path);
    const maximum = finiteNumber(schema, "maximum", context.path);
    const exclusiveMinimum = own(schema, "exclusiveMinimum");
    const exclusiveMaximum = own(schema, "exclusiveMaximum");
    // Draft 4 wrote exclusiveMinimum/exclusiveMaximum as booleans modifying minimum/maximum.
    if (minimum !== undefined) min = exclusiveMinimum === true ? Math.floor(minimum) + 1 : Math.ceil(minimum);
    if (maximum !== undefined) max = exclusiveMaximum === true ? Math.ceil(maximum) - 1 : Math.floor(maximum);
    const exclusiveLow = finiteNumber(schema, "exclusiveMinimum", context.path);
    const exclusiveHigh = finiteNumber(schema, "exclusiveMaximum", context.path);
    if (exclusiveLow !== undefined) min = Math.max(min ?? -Infinity, Math.floor(exclusiveLow) + 1);
    if (exclusiveHigh !== undefined) max = Math.min(max ?? Infinity, Math.ceil(exclusiveHigh) - 1);
    if (min === undefined && max === undefined) return this.rules.primitive("integer");
    // Unbounded integers have at most 16 digits, so bounds beyond that range are no constraint.
    if (min !== undefined && min <= -1e16) min = undefined;
    if (max !== undefined && max >= 1e16) max = undefined;
    if (min !== undefined && Math.abs(min) > SAFE_BOUND) throw new UnsupportedSchemaError("minimum", context.path, "bounds beyond ±2^53 are not supported");
    if (max !== undefined && Math.abs(max) > SAFE_BOUND) throw new UnsupportedSchemaError("maximum", context.path, "bounds beyond ±2^53 are not supported");
    if (min !== undefined && max !== undefined && min > max) throw new InvalidSchemaError(context.path, "no integer lies within the bounds");
    if (min === undefined && max === undefined) return this.rules.primitive("integer");
    return this.rules.rule(hint, integerRange(min, max));
  }

  /** Numbers with integer-valued inclusive bounds: integer part in range, no exponent. */
  private number(schema: SchemaObject, hint: string, context: WalkContext): string {
    for (const keyword of ["exclusiveMinimum", "exclusiveMaximum", "multipleOf"]) {
      if (Object.hasOwn(schema, keyword) && schema[keyword] !== false) {
        throw new UnsupportedSchemaError(keyword, context.path, "not supported for non-integer numbers");
      }
    }
    const min = finiteNumber(schema, "minimum", context.path);
    const max = finiteNumber(schema, "maximum", context.path);
    if (min === undefined && max === undefined) return this.rules.primitive("number");
    for (const [keyword, bound] of [["minimum", min], ["maximum", max]] as const) {
      if (bound !== undefined && (!Number.isInteger(bound) || Math.abs(bound) > MAX_NUMBER_BOUND)) {
        throw new UnsupportedSchemaError(keyword, context.path, `number bounds must be integers within ±${MAX_NUMBER_BOUND}`);
      }
    }
    if (min !== undefined && max !== undefined && min > max) throw new InvalidSchemaError(context.path, "no number lies within the bounds");
    const fraction = this.rules.rule("fraction", `"." ${this.rules.primitive("decimal-part")}`);
    const zeroFraction = this.rules.rule("zero-fraction", '"." [0]{1,16}');
    // Magnitudes in [low, high]: integer part below high with any fraction, or high itself with a zero fraction.
    const magnitudes = (low: number, high: number | undefined): string[] => {
      if (high === undefined) return [`(${integerRange(low, undefined)}) ${fraction}?`];
      const parts = [`"${high}" ${zeroFraction}?`];
      if (high - 1 >= low) parts.unshift(`(${integerRange(low, high - 1)}) ${fraction}?`);
      return parts;
    };
    const alternatives: string[] = [];
    if (min === undefined || min < 0) {
      alternatives.push(`"-" (${magnitudes(max !== undefined && max < 0 ? -max : 0, min === undefined ? undefined : -min).join(" | ")})`);
    }
    if (max === undefined || max >= 0) alternatives.push(...magnitudes(min === undefined || min < 0 ? 0 : min, max));
    return this.rules.rule(hint, alternatives.join(" | "));
  }

  private string(schema: SchemaObject, hint: string, context: WalkContext): string {
    const minLength = nonNegativeInteger(schema, "minLength", context.path);
    const maxLength = nonNegativeInteger(schema, "maxLength", context.path);
    const lengthKeyword = minLength !== undefined ? "minLength" : maxLength !== undefined ? "maxLength" : undefined;
    const format = own(schema, "format");
    const pattern = own(schema, "pattern");
    if (format !== undefined) {
      if (typeof format !== "string" || !Object.hasOwn(STRING_FORMATS, format)) {
        throw new UnsupportedSchemaError("format", context.path, `supported formats are ${Object.keys(STRING_FORMATS).join(", ")}`);
      }
      const clash = pattern !== undefined ? "pattern" : lengthKeyword;
      if (clash !== undefined) throw new UnsupportedSchemaError(clash, context.path, "cannot be combined with 'format'");
      const body = this.rules.primitive(STRING_FORMATS[format]!);
      return this.rules.rule(`${format}-string`, `"\\"" ${body} "\\""`);
    }
    if (pattern !== undefined) {
      throw new UnsupportedSchemaError("pattern", context.path, "regular expressions are not translated to grammars yet");
    }
    if (minLength === undefined && maxLength === undefined) return this.rules.primitive("string");
    if (minLength !== undefined && maxLength !== undefined && minLength > maxLength) {
      throw new InvalidSchemaError(context.path, "'minLength' exceeds 'maxLength'");
    }
    const chars = this.rules.repeat(this.rules.primitive("char"), minLength ?? 0, maxLength, `${hint}-chars`);
    return this.rules.rule(hint, `"\\"" ${chars} "\\""`);
  }

  private array(schema: SchemaObject, hint: string, context: WalkContext): string {
    if (own(schema, "uniqueItems") === true && !(own(schema, "maxItems") === 0 || own(schema, "maxItems") === 1)) {
      throw new UnsupportedSchemaError("uniqueItems", context.path, "a grammar cannot enforce it");
    }
    const minItems = nonNegativeInteger(schema, "minItems", context.path) ?? 0;
    const maxItems = nonNegativeInteger(schema, "maxItems", context.path);
    if (maxItems !== undefined && minItems > maxItems) throw new InvalidSchemaError(context.path, "'minItems' exceeds 'maxItems'");
    const items = own(schema, "items");
    const prefixKeyword = Object.hasOwn(schema, "prefixItems") ? "prefixItems" : "items";
    const prefix = Object.hasOwn(schema, "prefixItems") ? own(schema, "prefixItems") : Array.isArray(items) ? items : [];
    if (!Array.isArray(prefix)) throw new InvalidSchemaError(context.path, "'prefixItems' must be an array");
    const restKeyword = Object.hasOwn(schema, "prefixItems") || !Array.isArray(items) ? "items" : "additionalItems";
    let rest = own(schema, restKeyword);
    // Tuples without a rule for further items get exactly their listed items (as objects get only declared properties).
    if (rest === undefined) rest = prefix.length > 0 && minItems <= prefix.length ? false : true;
    const emitted = Math.min(prefix.length, maxItems ?? Infinity);
    const restMin = Math.max(0, minItems - emitted);
    const restMax = rest === false ? 0 : maxItems === undefined ? undefined : maxItems - emitted;
    if (restMax !== undefined && restMin > restMax) throw new InvalidSchemaError(context.path, `no array of ${minItems} or more items is allowed`);
    const space = this.rules.space();
    const elements = prefix.slice(0, emitted).map((item, index) =>
      this.visit(item, `${hint}-${index}`, this.child(context, prefixKeyword, [prefixKeyword, String(index)], true)));
    let body = elements.join(` ${space} "," ${space} `);
    if (restMax !== 0) {
      const item = this.visit(rest, `${hint}-item`, this.child(context, restKeyword, [restKeyword], true));
      const next = this.rules.rule(`${hint}-next`, `${space} "," ${space} ${item}`);
      if (elements.length > 0) {
        body = `${body} ${this.rules.repeat(next, restMin, restMax, `${hint}-next`)}`;
      } else {
        const more = this.rules.repeat(next, Math.max(0, restMin - 1), restMax === undefined ? undefined : restMax - 1, `${hint}-next`);
        body = restMin === 0 ? `( ${item} ${more} ${space} )?` : `${item} ${more} ${space}`;
        return this.rules.rule(hint, `"[" ${space} ${body} "]"`);
      }
    }
    return this.rules.rule(hint, body === "" ? `"[" ${space} "]"` : `"[" ${space} ${body} ${space} "]"`);
  }

  private object(schema: SchemaObject, hint: string, context: WalkContext): string {
    const properties = own(schema, "properties") ?? {};
    if (!isSchemaObject(properties)) throw new InvalidSchemaError(context.path, "'properties' must be an object");
    const requiredList = own(schema, "required") ?? [];
    if (!Array.isArray(requiredList) || !requiredList.every((name) => typeof name === "string")) {
      throw new InvalidSchemaError(context.path, "'required' must be an array of strings");
    }
    const required = new Set(requiredList);
    const additional = own(schema, "additionalProperties");
    const extrasAllowed = additional === true || isSchemaObject(additional);
    const declared: Array<{ name: string; schema: unknown; keyword: string[] }> = [];
    for (const [name, propertySchema] of Object.entries(properties)) {
      if (propertySchema === false) {
        if (required.has(name)) throw new InvalidSchemaError(context.path, `required property '${name}' is forbidden by its schema`);
        continue;
      }
      declared.push({ name, schema: propertySchema, keyword: ["properties", name] });
    }
    // A required name without a property schema takes additionalProperties' schema (absent: any value).
    for (const name of required) {
      if (Object.hasOwn(properties, name)) continue;
      if (additional === false) throw new InvalidSchemaError(context.path, `required property '${name}' is forbidden by additionalProperties`);
      declared.push({ name, schema: additional ?? true, keyword: ["additionalProperties"] });
    }
    const space = this.rules.space();
    const kvs = declared.map(({ name, schema: propertySchema, keyword }) => {
      const value = this.visit(propertySchema, `${hint}-${name}`, this.child(context, keyword[0]!, keyword, true));
      return {
        required: required.has(name),
        kv: this.rules.rule(`${hint}-${name}-kv`, `${gbnfLiteral(JSON.stringify(name))} ${space} ":" ${space} ${value}`),
      };
    });
    let extraKv: string | undefined;
    if (extrasAllowed) {
      const value = additional === true ? this.anyValue()
        : this.visit(additional, `${hint}-additional`, this.child(context, "additionalProperties", ["additionalProperties"], true));
      const key = extraKeyRule(declared.map((entry) => entry.name), `${hint}-additional-key`, this.rules, context.path);
      extraKv = this.rules.rule(`${hint}-additional-kv`, `${key} ${space} ":" ${space} ${value}`);
    }
    this.checkPropertyCounts(schema, kvs.filter((kv) => kv.required).length, extraKv === undefined ? kvs.length : undefined, context);
    if (kvs.length === 0 && extraKv !== undefined) return this.map(schema, extraKv, hint, context);
    if (kvs.length === 0) return this.rules.rule(hint, `"{" ${space} "}"`);
    // Properties come in schema order; a rule per position lists what may still follow once one pair is written.
    const next = (kv: string): string => this.rules.rule(`${kv}-next`, `${space} "," ${space} ${kv}`);
    const tails: string[] = new Array(kvs.length + 1);
    tails[kvs.length] = extraKv === undefined ? "" : `${next(extraKv)}*`;
    for (let i = kvs.length - 1; i >= 1; i--) {
      const item = kvs[i]!.required ? next(kvs[i]!.kv) : `${next(kvs[i]!.kv)}?`;
      tails[i] = i === kvs.length - 1 && tails[kvs.length] === "" ? item : this.rules.rule(`${hint}-rest`, `${item} ${tails[i + 1]}`);
    }
    const starts: string[] = [];
    let anyRequired = false;
    for (let i = 0; i < kvs.length; i++) {
      starts.push(`${kvs[i]!.kv} ${tails[i + 1]}`.trim());
      if (kvs[i]!.required) {
        anyRequired = true;
        break;
      }
    }
    if (!anyRequired && extraKv !== undefined) starts.push(`${extraKv} ${tails[kvs.length]}`);
    const pairs = `( ${starts.join(" | ")} ) ${space}`;
    return this.rules.rule(hint, `"{" ${space} ${anyRequired ? pairs : `( ${pairs} )?`} "}"`);
  }

  /** An object with only extra properties: key/value pairs counted by min/maxProperties. */
  private map(schema: SchemaObject, kv: string, hint: string, context: WalkContext): string {
    const space = this.rules.space();
    const min = nonNegativeInteger(schema, "minProperties", context.path) ?? 0;
    const max = nonNegativeInteger(schema, "maxProperties", context.path);
    if (max === 0) return this.rules.rule(hint, `"{" ${space} "}"`);
    const next = this.rules.rule(`${kv}-next`, `${space} "," ${space} ${kv}`);
    const more = this.rules.repeat(next, Math.max(0, min - 1), max === undefined ? undefined : max - 1, `${hint}-next`);
    const pairs = `${kv} ${more} ${space}`;
    return this.rules.rule(hint, `"{" ${space} ${min === 0 ? `( ${pairs} )?` : pairs} "}"`);
  }

  /** min/maxProperties are enforced where the property list already decides them, else refused. */
  private checkPropertyCounts(schema: SchemaObject, requiredCount: number, declaredOnly: number | undefined, context: WalkContext): void {
    const min = nonNegativeInteger(schema, "minProperties", context.path);
    const max = nonNegativeInteger(schema, "maxProperties", context.path);
    const isMap = declaredOnly === undefined && Object.keys(own(schema, "properties") ?? {}).length === 0 && requiredCount === 0;
    // A map may repeat a key (the parsed object keeps the last), so only a minimum of one pair is exact.
    if (isMap && min !== undefined && min > 1) {
      throw new UnsupportedSchemaError("minProperties", context.path, "above 1 is only enforced through required properties");
    }
    if (isMap) return;
    if (min !== undefined && min > requiredCount) {
      throw new UnsupportedSchemaError("minProperties", context.path, "only enforced when the required properties meet it");
    }
    if (max !== undefined && (declaredOnly === undefined || max < declaredOnly)) {
      throw new UnsupportedSchemaError("maxProperties", context.path, "only enforced when all declared properties fit it and no others are allowed");
    }
  }
}

function valueHasType(value: unknown, type: JsonType): boolean {
  switch (type) {
    case "null": return value === null;
    case "boolean": return typeof value === "boolean";
    case "integer": return Number.isInteger(value);
    case "number": return typeof value === "number";
    case "string": return typeof value === "string";
    case "array": return Array.isArray(value);
    case "object": return isSchemaObject(value);
  }
}

/** Convenience: the grammar for a whole response matching `schema`. */
export function jsonSchemaGrammar(schema: unknown): string {
  const builder = new GbnfBuilder();
  return builder.build(builder.schema(schema, "value"));
}

/** Convenience: the grammar for any JSON object (json_object mode / Ollama format "json"). */
export function jsonObjectGrammar(): string {
  const builder = new GbnfBuilder();
  return builder.build(builder.anyObject());
}
