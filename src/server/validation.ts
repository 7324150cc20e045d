import type { Ajv, ValidateFunction } from "ajv";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
let shared: Ajv | undefined;

/** Ajv is required on the first validation, not at start-up (importing it costs ~25 ms). */
function ajv(): Ajv {
  if (!shared) {
    const { Ajv: AjvClass } = require("ajv") as typeof import("ajv");
    // Wrong types are errors, not silently coerced; nothing is silently removed.
    shared = new AjvClass({ allowUnionTypes: true, coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false });
  }
  return shared;
}

/**
 * Compiles a schema on its first use instead of at start-up: the OpenAI body schemas cost
 * ~50-80 ms of `listen`, which `shimmy serve`'s first /health answer waited for. Used as
 * Fastify's validator compiler and by the WebSocket route.
 */
export function lazyValidator({ schema }: { schema: object }) {
  let compiled: ValidateFunction | undefined;
  const validate = (data: unknown): boolean => {
    compiled ??= ajv().compile(schema);
    const ok = compiled(data);
    validate.errors = compiled.errors;
    return ok;
  };
  validate.errors = undefined as ValidateFunction["errors"];
  return validate;
}
