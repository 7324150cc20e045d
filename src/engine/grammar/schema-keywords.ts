/** How each JSON Schema keyword is treated by the grammar builder. */

/** Annotations: accepted and ignored (they never constrain a value). */
export const ANNOTATION_KEYWORDS = new Set([
  "title", "description", "$schema", "$id", "$comment", "default", "examples", "example", "deprecated",
  "readOnly", "writeOnly", "strict", "name", "$anchor", "contentEncoding", "contentMediaType", "contentSchema",
  "$vocabulary", "discriminator", "xml", "externalDocs",
]);

/** Keywords that hold subschema tables referenced through $ref, never applied to the value itself. */
export const DEFINITION_KEYWORDS = new Set(["$defs", "definitions"]);

/** Validation keywords no grammar here enforces: a schema using them is refused by name. */
export const REFUSED_KEYWORDS = new Set([
  "not", "if", "then", "else", "dependentRequired", "dependentSchemas", "dependencies", "contains", "minContains",
  "maxContains", "patternProperties", "propertyNames", "unevaluatedProperties", "unevaluatedItems", "$dynamicRef",
  "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor",
]);

/** Keywords that constrain one JSON type each: they let us infer the type when `type` is absent. */
export const TYPE_KEYWORDS: Readonly<Record<string, readonly string[]>> = {
  object: ["properties", "required", "additionalProperties", "minProperties", "maxProperties"],
  array: ["items", "prefixItems", "additionalItems", "minItems", "maxItems", "uniqueItems"],
  string: ["minLength", "maxLength", "pattern", "format"],
  number: ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"],
};

export const JSON_TYPES = ["null", "boolean", "object", "array", "number", "integer", "string"] as const;
export type JsonType = (typeof JSON_TYPES)[number];

/** Keywords we enforce (beyond the type-specific ones): together with TYPE_KEYWORDS, what constrains a value. */
const STRUCTURE_KEYWORDS = ["type", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "nullable"];
const CONSTRAINT_KEYWORDS = new Set([...STRUCTURE_KEYWORDS, ...Object.values(TYPE_KEYWORDS).flat(), ...REFUSED_KEYWORDS]);

/** The keywords of `schema` that constrain values; annotations, $defs and unknown keywords are not among them. */
export function constraintKeywords(schema: object): string[] {
  return Object.keys(schema).filter((key) => CONSTRAINT_KEYWORDS.has(key));
}
