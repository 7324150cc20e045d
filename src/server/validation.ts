import { Ajv, type ValidateFunction } from "ajv";

// Wrong types are errors, not silently coerced; nothing is silently removed.
const ajv = new Ajv({ allowUnionTypes: true, coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false });

/**
 * Compiles a schema on its first use instead of at start-up: the OpenAI body schemas cost
 * ~50-80 ms of `listen`, which `shimmy serve`'s first /health answer waited for. Used as
 * Fastify's validator compiler and by the WebSocket route.
 */
export function lazyValidator({ schema }: { schema: object }) {
  let compiled: ValidateFunction | undefined;
  const validate = (data: unknown): boolean => {
    compiled ??= ajv.compile(schema);
    const ok = compiled(data);
    validate.errors = compiled.errors;
    return ok;
  };
  validate.errors = undefined as ValidateFunction["errors"];
  return validate;
}
