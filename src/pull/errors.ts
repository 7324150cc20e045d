/**
 * A pull or delete that cannot go on, with the HTTP status an API answers it with: 400 a bad
 * reference, 401/403 no access, 404 nothing by that name, 502 a registry that misbehaved.
 */
export class PullError extends Error {
  override readonly name = "PullError";
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** The user (Ctrl-C) or the client (a closed connection) stopped the pull; its `.incomplete` files stay for a resume. */
export function isAbort(err: unknown, signal?: AbortSignal): boolean {
  return signal?.aborted === true || (err instanceof Error && err.name === "AbortError");
}
