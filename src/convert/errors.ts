/** A model folder that cannot be converted; names the file (and tensor) at fault. */
export class ConvertError extends Error {
  override readonly name = "ConvertError";
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
  }
}
