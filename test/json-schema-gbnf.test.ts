import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Ajv2020 } from "ajv/dist/2020.js";
import { getLlama, LlamaCompletion, LlamaLogLevel, type Llama, type LlamaContext, type LlamaGrammar, type LlamaModel } from "node-llama-cpp";
import {
  GbnfBuilder, InvalidSchemaError, jsonObjectGrammar, jsonSchemaGrammar, UnsupportedSchemaError,
} from "../src/engine/grammar/json-schema-gbnf.js";
import { STORIES_CHAT_GGUF } from "./helpers/paths.js";

// Formats checked independently of the grammar's own rules.
const FORMATS = {
  date: /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/,
  time: /^([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{3})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/,
  "date-time": /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{3})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/,
  uuid: /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/,
};
const ajv = new Ajv2020({ strict: false, allowUnionTypes: true, formats: FORMATS });

let llama: Llama;
let model: LlamaModel;
let context: LlamaContext;

before(async () => {
  llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  model = await llama.loadModel({ modelPath: STORIES_CHAT_GGUF });
  context = await model.createContext({ contextSize: 512, threads: 1 });
});
after(async () => {
  await context?.dispose();
  await model?.dispose();
});

/** Parses the grammar with llama.cpp's own parser (a parse error throws). */
async function parse(grammar: string): Promise<LlamaGrammar> {
  return llama.createGrammar({ grammar });
}

/** Whether `text` is a complete match of the grammar, per llama.cpp's grammar engine (node-llama-cpp internal). */
function matches(grammar: LlamaGrammar, text: string): boolean {
  const native = (grammar as unknown as { _grammar: { isTextCompatible(text: string): boolean } })._grammar;
  return native.isTextCompatible(text);
}

async function schemaMatcher(schema: unknown): Promise<(text: string) => boolean> {
  const grammar = await parse(jsonSchemaGrammar(schema));
  return (text) => matches(grammar, text);
}

/**
 * Schemas whose every value the tiny model can finish within the token budget (strings are bounded).
 * Unbounded ones (free strings, extra keys, any value) are checked against the grammar engine below instead:
 * the model rambles inside an unbounded string past any budget.
 */
const CORPUS: Record<string, unknown> = {
  "nested objects with optional properties": {
    type: "object",
    properties: {
      name: { type: "string", maxLength: 8 },
      address: {
        type: "object",
        properties: { city: { type: "string", minLength: 1, maxLength: 6 }, zip: { type: "integer", minimum: 10000, maximum: 99999 } },
        required: ["city"],
      },
      active: { type: "boolean" },
    },
    required: ["name", "address"],
  },
  "enum and const": {
    type: "object",
    properties: { color: { enum: ["red", "green", "blue", 7, null, { deep: [true] }] }, kind: { const: "fixed" } },
    required: ["color", "kind"],
    additionalProperties: false,
  },
  "array of objects": {
    type: "array",
    items: { type: "object", properties: { id: { type: "integer", minimum: -5, maximum: 5 }, label: { type: "string", maxLength: 4 } }, required: ["id", "label"] },
    minItems: 1,
    maxItems: 3,
  },
  "nullable via type array and anyOf": {
    type: "object",
    properties: {
      a: { type: ["string", "null"], maxLength: 5 },
      b: { anyOf: [{ type: "integer", minimum: 0, maximum: 9 }, { type: "null" }] },
      c: { type: "number", nullable: true, minimum: 0, maximum: 1 },
    },
    required: ["a", "b", "c"],
  },
  "recursive $ref through $defs": {
    $defs: {
      node: {
        type: "object",
        properties: { v: { type: "integer", minimum: 0, maximum: 99 }, next: { anyOf: [{ $ref: "#/$defs/node" }, { type: "null" }] } },
        required: ["v", "next"],
        additionalProperties: false,
      },
    },
    $ref: "#/$defs/node",
  },
  "definitions and allOf": {
    definitions: { named: { type: "object", properties: { name: { type: "string", maxLength: 5 } }, required: ["name"] } },
    allOf: [{ $ref: "#/definitions/named" }, { properties: { n: { type: "integer", exclusiveMinimum: 0, exclusiveMaximum: 4 } }, required: ["n"] }],
  },
  "integer ranges": {
    type: "array",
    prefixItems: [
      { type: "integer", minimum: -1234, maximum: 56789 },
      { type: "integer", exclusiveMinimum: 99 },
      { type: "integer", maximum: -7 },
      { type: "number", minimum: -3, maximum: 10 },
    ],
  },
  "string lengths and formats": {
    type: "object",
    properties: {
      short: { type: "string", minLength: 2, maxLength: 3 },
      exact: { type: "string", minLength: 4, maxLength: 4 },
      day: { type: "string", format: "date" },
      at: { type: "string", format: "time" },
      stamp: { type: "string", format: "date-time" },
      id: { type: "string", format: "uuid" },
    },
    required: ["short", "exact", "day", "at", "stamp", "id"],
  },
  "OpenAI strict: math reasoning": {
    type: "object",
    properties: {
      steps: {
        type: "array",
        items: {
          type: "object",
          properties: { explanation: { type: "string", maxLength: 6 }, output: { type: "string", maxLength: 6 } },
          required: ["explanation", "output"],
          additionalProperties: false,
        },
        maxItems: 2,
      },
      final_answer: { type: "string", maxLength: 6 },
    },
    required: ["steps", "final_answer"],
    additionalProperties: false,
    name: "math_reasoning",
    strict: true,
  },
  "OpenAI strict: UI component (recursive, enum, nullable)": {
    type: "object",
    properties: {
      type: { type: "string", enum: ["div", "button", "header"] },
      label: { type: "string", maxLength: 5 },
      children: { type: "array", items: { $ref: "#" }, maxItems: 1 },
      attributes: {
        type: ["array", "null"],
        items: {
          type: "object",
          properties: { name: { type: "string", maxLength: 4 }, value: { type: "string", maxLength: 4 } },
          required: ["name", "value"],
          additionalProperties: false,
        },
        maxItems: 1,
      },
    },
    required: ["type", "label", "children", "attributes"],
    additionalProperties: false,
  },
  "tuple with further items": {
    type: "array",
    prefixItems: [{ type: "boolean" }, { const: "x" }],
    items: { type: "null" },
    maxItems: 4,
  },
};

const SEEDS = [1, 2, 3];

async function sample(schema: unknown, seed: number, maxTokens: number): Promise<string> {
  const grammar = await parse(jsonSchemaGrammar(schema));
  const sequence = context.getSequence();
  try {
    const completion = new LlamaCompletion({ contextSequence: sequence });
    const { response, metadata } = await completion.generateCompletionWithMeta("Once upon a time", {
      grammar, temperature: 0.8, seed, maxTokens,
    });
    assert.equal(metadata.stopReason, "eogToken", `generation did not finish within ${maxTokens} tokens: ${response}`);
    return response;
  } finally {
    sequence.dispose();
  }
}

async function assertSamplesValidate(schema: unknown, maxTokens: number): Promise<void> {
  const validate = ajv.compile(schema as object);
  for (const seed of SEEDS) {
    const text = await sample(schema, seed, maxTokens);
    let value: unknown;
    assert.doesNotThrow(() => (value = JSON.parse(text)), `seed ${seed}: not JSON: ${text}`);
    assert.ok(validate(value), `seed ${seed}: ${text}\n${ajv.errorsText(validate.errors)}`);
  }
}

describe("grammars sampled by a real model validate against their schema", () => {
  for (const [name, schema] of Object.entries(CORPUS)) {
    it(name, async () => assertSamplesValidate(schema, 300));
  }
});

describe("llama.cpp's grammar engine accepts valid documents and rejects invalid ones", () => {
  const person = {
    type: "object",
    properties: {
      name: { type: "string", maxLength: 10 },
      role: { enum: ["admin", "user"] },
      age: { type: "integer", minimum: 0, maximum: 150 },
      nick: { type: "string" },
    },
    required: ["name", "role"],
    additionalProperties: false,
  };

  it("objects: required, optional, enum, additionalProperties false, ranges", async () => {
    const ok = await schemaMatcher(person);
    const valid = { name: "Ann", role: "admin", age: 42, nick: "a\"b\\c\u00e9\n" };
    assert.ok(ok(JSON.stringify(valid)));
    assert.ok(ok(JSON.stringify(valid, null, 2)), "pretty-printed JSON");
    assert.ok(ok('{ "name" : "Bo" , "role" : "user" }'), "spaces around separators");
    assert.ok(ok('{"name":"Bo","role":"user","nick":"x"}'), "an optional property skipped");
    assert.ok(!ok('{"role":"user"}'), "missing required key");
    assert.ok(!ok('{"name":"Bo","role":"root"}'), "wrong enum value");
    assert.ok(!ok('{"name":"Bo","role":"user","extra":1}'), "extra property");
    assert.ok(!ok('{"name":"Bo","role":"user","age":151}'), "integer above maximum");
    assert.ok(!ok('{"name":"Bo","role":"user","age":-1}'), "integer below minimum");
    assert.ok(!ok('{"name":"Bo","role":"user","age":4.5}'), "non-integer");
    assert.ok(!ok('{"name":"Bo","role":"user","age":007}'), "leading zeros");
    assert.ok(!ok('{"name":"ABCDEFGHIJK","role":"user"}'), "string over maxLength");
    assert.ok(!ok('{"name":"a\u0001","role":"user"}'), "raw control character");
    assert.ok(!ok(`{"name":"Bo",${" ".repeat(2)}"role":"user"}`.replace(",", `,\n${" ".repeat(21)}`)), "unbounded whitespace");
    assert.ok(!ok('{"name":"Bo","role":"user"} '), "trailing text");
  });

  it("integer ranges match exactly the integers within the bounds", async () => {
    const ranges: Array<[number | undefined, number | undefined]> = [
      [0, 0], [-5, 5], [-1234, 56789], [7, 7], [-120, -7], [99, 1001], [0, undefined], [37, undefined], [undefined, -7], [undefined, 250],
    ];
    for (const [minimum, maximum] of ranges) {
      const ok = await schemaMatcher({ type: "integer", minimum, maximum });
      const probes = new Set<number>();
      for (const bound of [minimum ?? -50, maximum ?? 50, 0, 10, -10, 100, -100, 1000, -1000, 9999, 10000, 56789, 56790]) {
        for (let delta = -12; delta <= 12; delta++) probes.add(bound + delta);
      }
      for (const n of probes) {
        const inside = (minimum === undefined || n >= minimum) && (maximum === undefined || n <= maximum);
        assert.equal(ok(String(n)), inside, `${n} in [${minimum}, ${maximum}]`);
      }
    }
  });

  it("number bounds allow fractions inside and nothing outside", async () => {
    const ok = await schemaMatcher({ type: "number", minimum: -3, maximum: 10 });
    for (const text of ["-3", "-3.0", "-2.999", "0", "-0.5", "9.99", "10", "10.000", "3.14159"]) assert.ok(ok(text), text);
    for (const text of ["-3.01", "-4", "10.01", "11", "1e2", "100"]) assert.ok(!ok(text), text);
  });

  it("string lengths count characters, escapes included; surrogate escapes are refused", async () => {
    const ok = await schemaMatcher({ type: "string", minLength: 2, maxLength: 3 });
    assert.ok(ok('"ab"') && ok('"a\\n"') && ok('"\\u0041bc"') && ok('"é😀"'));
    assert.ok(!ok('"a"') && !ok('"abcd"') && !ok('"\\ud83d\\ude00"'));
    const long = await schemaMatcher({ type: "string", minLength: 2500, maxLength: 4100 });
    assert.ok(long(JSON.stringify("x".repeat(2500))) && long(JSON.stringify("x".repeat(4100))) && long(JSON.stringify("x".repeat(3333))));
    assert.ok(!long(JSON.stringify("x".repeat(2499))) && !long(JSON.stringify("x".repeat(4101))));
  });

  it("formats", async () => {
    const ok = await schemaMatcher({ type: "array", prefixItems: [{ format: "date" }, { format: "date-time" }, { format: "uuid" }] });
    assert.ok(ok('["2024-02-29", "2024-02-29T23:59:01.123+05:30", "123e4567-e89b-12d3-a456-426614174000"]'));
    assert.ok(!ok('["2024-13-01", "2024-02-29T23:59:01Z", "123e4567-e89b-12d3-a456-426614174000"]'));
    assert.ok(!ok('["2024-02-29", "2024-02-29T24:00:00Z", "123e4567-e89b-12d3-a456-426614174000"]'));
    assert.ok(!ok('["2024-02-29", "2024-02-29T23:59:01Z", "123e4567e89b12d3a456426614174000"]'));
  });

  it("additionalProperties: extra keys allowed, declared names never repeated", async () => {
    const ok = await schemaMatcher({ type: "object", properties: { a: { type: "integer" }, ab: { type: "boolean" } }, additionalProperties: { type: "string" } });
    assert.ok(ok('{"a":1,"ab":true,"abc":"x","b":"y","":"z"}'));
    assert.ok(ok('{"zz":"x"}'));
    assert.ok(!ok('{"a":1,"a":"x"}'), "declared key again as an extra");
    assert.ok(!ok('{"a":1,"ab":"x"}'), "declared key with the extra schema");
    assert.ok(!ok('{"a":1,"c":2}'), "extra value outside its schema");
  });

  it("maps, any value, property counts", async () => {
    const map = await schemaMatcher({ type: "object", additionalProperties: { type: "boolean" }, minProperties: 1, maxProperties: 2 });
    assert.ok(map('{"x":true}') && map('{"x":true,"y":false}'));
    assert.ok(!map("{}") && !map('{"x":true,"y":false,"z":true}') && !map('{"x":1}'));
    const any = await schemaMatcher({});
    for (const text of ['{"a":[1,{"b":null}]}', "[]", '"s"', "-0.5e-3", "true", "null"]) assert.ok(any(text), text);
    assert.ok(!any("{a:1}") && !any("[1,]") && !any("01"));
    const open = await schemaMatcher({ type: "object", properties: { a: { type: "integer" } }, additionalProperties: true });
    assert.ok(open('{"a":1,"b":[true]}') && open('{"b":{}}') && !open('{"a":"x"}'));
  });

  it("recursion, anyOf, nullable, const", async () => {
    const ok = await schemaMatcher(CORPUS["recursive $ref through $defs"]);
    assert.ok(ok('{"v":1,"next":{"v":2,"next":{"v":3,"next":null}}}'));
    assert.ok(!ok('{"v":1,"next":{"v":200,"next":null}}'));
    const ui = await schemaMatcher(CORPUS["OpenAI strict: UI component (recursive, enum, nullable)"]);
    assert.ok(ui('{"type":"div","label":"a","children":[{"type":"button","label":"b","children":[],"attributes":null}],"attributes":[{"name":"x","value":"y"}]}'));
    assert.ok(!ui('{"type":"div","label":"a","children":[],"attributes":"none"}'));
    const constant = await schemaMatcher({ const: { a: [1, "two", null] } });
    assert.ok(constant('{"a":[1,"two",null]}') && !constant('{"a":[1,"two"]}'));
  });

  it("json_object mode: any object, nothing else", async () => {
    const grammar = await parse(jsonObjectGrammar());
    assert.ok(matches(grammar, '{"a": [1, -2.5e3, "x", {"b": null}], "c": true}'));
    assert.ok(matches(grammar, "{}"));
    assert.ok(!matches(grammar, "[]") && !matches(grammar, '"x"') && !matches(grammar, "{'a': 1}"));
  });

  it("GbnfBuilder composes schemas with its own rules", async () => {
    const builder = new GbnfBuilder();
    const args = builder.schema({ type: "object", properties: { q: { $ref: "#/$defs/q" } }, required: ["q"], $defs: { q: { type: "string", maxLength: 3 } } }, "args");
    const name = builder.rule("tool-name", GbnfBuilder.literal('"search"'));
    const call = builder.rule("call", `"{" ${builder.space()} "\\"name\\":" ${builder.space()} ${name} "," ${builder.space()} "\\"arguments\\":" ${builder.space()} ${args} "}"`);
    const grammar = await parse(builder.build(`${call} | "[" ${builder.anyValue()} "]"`));
    assert.ok(matches(grammar, '{"name": "search", "arguments": {"q": "abc"}}'));
    assert.ok(matches(grammar, '[{"any": ["value"]}]'));
    assert.ok(!matches(grammar, '{"name": "search", "arguments": {"q": "abcd"}}'));
    assert.ok(!matches(grammar, '{"name": "find", "arguments": {"q": "abc"}}'));
    assert.equal(GbnfBuilder.literal('a"b\\c\n\u0001'), '"a\\"b\\\\c\\n\\x01"');
  });
});

describe("schemas we cannot enforce are refused by name", () => {
  function refuses(schema: unknown, keyword: string, path: string): void {
    assert.throws(() => jsonSchemaGrammar(schema), (error: unknown) => {
      assert.ok(error instanceof UnsupportedSchemaError, String(error));
      assert.equal(error.keyword, keyword);
      assert.equal(error.path, path);
      return true;
    });
  }
  function invalid(schema: unknown, path: string): void {
    assert.throws(() => jsonSchemaGrammar(schema), (error: unknown) => {
      assert.ok(error instanceof InvalidSchemaError, String(error));
      assert.equal(error.path, path);
      return true;
    });
  }

  it("unsupported keywords name the keyword and where it is", () => {
    for (const keyword of ["not", "if", "patternProperties", "propertyNames", "dependentRequired", "contains", "unevaluatedProperties"]) {
      refuses({ type: "object", properties: { a: { [keyword]: {} } } }, keyword, "#/properties/a");
    }
    refuses({ type: "array", items: { type: "integer" }, uniqueItems: true }, "uniqueItems", "#");
    refuses({ type: "number", exclusiveMinimum: 0 }, "exclusiveMinimum", "#");
    refuses({ type: "number", minimum: 0.5 }, "minimum", "#");
    refuses({ type: "number", multipleOf: 0.5 }, "multipleOf", "#");
    refuses({ type: "string", format: "email" }, "format", "#");
    refuses({ type: "string", pattern: "^a+$" }, "pattern", "#");
    refuses({ type: "object", properties: { a: {} }, minProperties: 1 }, "minProperties", "#");
    refuses({ items: { $ref: "https://example.com/schema.json" } }, "$ref", "#/items");
    refuses({ allOf: [{ properties: { a: {} }, additionalProperties: false }, { properties: { b: {} } }] }, "allOf", "#");
    refuses({ type: "object", additionalProperties: true, minProperties: 2 }, "minProperties", "#");
  });

  it("absurd bounds and oversized grammars are refused", () => {
    refuses({ type: "string", maxLength: 1e9 }, "maxLength", "#");
    refuses({ type: "array", minItems: 200_000 }, "minItems", "#");
    refuses({ type: "integer", minimum: 2 ** 60 }, "minimum", "#");
    refuses({ enum: Array.from({ length: 60_000 }, (_, i) => `value number ${i}`) }, "$schema", "#");
  });

  it("nesting 10,000 deep gives a typed error, not a stack overflow", () => {
    let deep: unknown = { type: "integer" };
    for (let i = 0; i < 10_000; i++) deep = { type: "object", properties: { a: deep }, required: ["a"] };
    assert.throws(() => jsonSchemaGrammar(deep), (error: unknown) => error instanceof UnsupportedSchemaError && error.keyword === "properties");
    let refs: Record<string, unknown> = {};
    for (let i = 0; i < 10_000; i++) refs[`d${i}`] = { $ref: `#/$defs/d${i + 1}` };
    refs = { $defs: { ...refs, d10000: { type: "null" } }, $ref: "#/$defs/d0" };
    assert.throws(() => jsonSchemaGrammar(refs), UnsupportedSchemaError);
  });

  it("left-recursive references are refused", () => {
    refuses({ $defs: { a: { anyOf: [{ $ref: "#/$defs/a" }, { type: "null" }] } }, $ref: "#/$defs/a" }, "$ref", "#/$defs/a/anyOf/0");
  });

  it("malformed schemas are InvalidSchemaError", () => {
    invalid(false, "#");
    invalid({ type: "object", properties: { a: 42 } }, "#/properties/a");
    invalid({ type: "object", properties: { a: { $ref: "#/$defs/missing" } } }, "#/properties/a");
    invalid({ type: "strnig" }, "#");
    invalid({ type: "integer", minimum: 5, maximum: 4 }, "#");
    invalid({ type: "string", maxLength: -1 }, "#");
    invalid({ type: "object", properties: { a: false }, required: ["a"] }, "#");
  });

  it("annotations are ignored", async () => {
    const schema = { title: "t", description: "d", $schema: "https://json-schema.org/draft/2020-12/schema", $id: "x", $comment: "c", default: 1, examples: [1], deprecated: false, readOnly: true, writeOnly: false, type: "boolean" };
    const ok = await schemaMatcher(schema);
    assert.ok(ok("true") && !ok("1"));
  });
});
