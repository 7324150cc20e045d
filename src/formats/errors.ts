/** A file that cannot be parsed: names the file and, where known, the byte offset of the problem. */
export class FormatError extends Error {
  override readonly name = "FormatError";
  constructor(
    readonly file: string,
    readonly offset: number | undefined,
    readonly reason: string,
  ) {
    super(offset === undefined ? `${file}: ${reason}` : `${file}: ${reason} (at byte ${offset})`);
  }
}
