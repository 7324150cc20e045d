import { FormatError } from "../formats/errors.js";
import { readJsonObject } from "../formats/json.js";
import { ConvertError } from "./errors.js";

/** A tokenizer file (tokenizer.json, tekken.json) read as a JSON object; a malformed one is a ConvertError naming it. */
export function readTokenizerFile<T>(path: string): T {
  try {
    return readJsonObject(path, "the tokenizer") as T;
  } catch (e) {
    if (e instanceof FormatError) throw new ConvertError(path, `cannot read tokenizer: ${e.reason}`);
    throw e;
  }
}
