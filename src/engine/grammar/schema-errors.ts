/** Longest path quoted in an error message; a hostile schema's path can be very long. */
const MAX_PATH_IN_MESSAGE = 200;

function quotePath(path: string): string {
  return path.length > MAX_PATH_IN_MESSAGE ? `${path.slice(0, MAX_PATH_IN_MESSAGE)}…` : path;
}

/** A schema keyword or construct we cannot enforce: the server answers 400 naming `keyword` at `path`. */
export class UnsupportedSchemaError extends Error {
  override readonly name = "UnsupportedSchemaError";
  readonly keyword: string;
  /** JSON pointer fragment of the schema holding the keyword, e.g. "#/properties/age". */
  readonly path: string;

  constructor(keyword: string, path: string, detail: string) {
    super(`JSON Schema keyword '${keyword}' at ${quotePath(path)} cannot be enforced: ${detail}`);
    this.keyword = keyword;
    this.path = path;
  }
}

/** A schema that is malformed (e.g. a $ref that does not resolve, a non-object where a schema must be). */
export class InvalidSchemaError extends Error {
  override readonly name = "InvalidSchemaError";
  /** JSON pointer fragment of the offending schema, e.g. "#/items". */
  readonly path: string;

  constructor(path: string, detail: string) {
    super(`invalid JSON Schema at ${quotePath(path)}: ${detail}`);
    this.path = path;
  }
}
