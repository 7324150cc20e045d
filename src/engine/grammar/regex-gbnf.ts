/** JSON Schema `pattern` → GBNF for the JSON-encoded string. */
import type { GbnfRules } from "./gbnf-rules.js";
import { UnsupportedSchemaError } from "./schema-errors.js";

export function patternRule(_pattern: string, _hint: string, _rules: GbnfRules, path: string): string {
  throw new UnsupportedSchemaError("pattern", path, "regular expressions are not supported yet");
}
