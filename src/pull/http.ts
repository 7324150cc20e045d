import { setTimeout as sleep } from "node:timers/promises";
import { PullError, isAbort } from "./errors.js";

/** How hard to try: network errors, 5xx and 429 are retried with exponential backoff. */
export interface RetryPolicy {
  /** Consecutive failures before giving up. */
  attempts: number;
  /** The first wait; each further failure doubles it (capped at 10 s). */
  baseDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 6, baseDelayMs: 500 };

export interface HttpOptions {
  signal?: AbortSignal;
  retry?: RetryPolicy;
}

export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

/** A network error's useful words: undici says "fetch failed" and keeps the reason in `cause`. */
export function networkReason(err: unknown): string {
  const e = err as Error & { cause?: { message?: string; code?: string } };
  const cause = e.cause?.code ?? e.cause?.message;
  return cause ? `${e.message} (${cause})` : e.message;
}

/**
 * Counts one failed try and waits before the next; throws once the policy's tries are spent.
 * Returns the new count of consecutive failures.
 */
export async function backoff(failures: number, what: string, reason: string, options: HttpOptions): Promise<number> {
  const retry = options.retry ?? DEFAULT_RETRY;
  const next = failures + 1;
  if (next >= retry.attempts) throw new PullError(502, `${what}: ${reason} (gave up after ${next} tries)`);
  await sleep(Math.min(retry.baseDelayMs * 2 ** failures, 10_000), undefined, { signal: options.signal });
  return next;
}

/**
 * fetch() with retries on network errors and retryable statuses; any other answer is returned
 * for the caller to judge. An abort is thrown as it is.
 */
export async function fetchRetrying(url: string, init: RequestInit, what: string, options: HttpOptions): Promise<Response> {
  let failures = 0;
  for (;;) {
    let res: Response;
    try {
      res = await fetch(url, { ...init, signal: options.signal });
    } catch (e) {
      if (isAbort(e, options.signal)) throw e;
      failures = await backoff(failures, what, networkReason(e), options);
      continue;
    }
    if (!isRetryableStatus(res.status)) return res;
    await res.body?.cancel();
    failures = await backoff(failures, what, `HTTP ${res.status}`, options);
  }
}

/** A registry's JSON answer, or a PullError from `describe` for any status but 200. */
export async function fetchJson(url: string, headers: Record<string, string>, what: string, options: HttpOptions, describe: (res: Response) => PullError): Promise<unknown> {
  const res = await fetchRetrying(url, { headers }, what, options);
  if (res.status !== 200) {
    await res.body?.cancel();
    throw describe(res);
  }
  try {
    return await res.json();
  } catch (e) {
    throw new PullError(502, `${what}: the answer is not JSON (${(e as Error).message})`);
  }
}
