import type { FastifyBaseLogger } from "fastify";

const logged = new Set<string>();

/**
 * Fields a client sent that Shimmy accepts and ignores (they do not change the answer here): each
 * is logged once per process at debug level, so a user wondering why one has no effect can find
 * out without the log filling up with every request.
 */
export function logIgnoredOnce(log: FastifyBaseLogger, api: string, body: object, ignored: readonly string[]): void {
  for (const field of ignored) {
    const value = (body as Record<string, unknown>)[field];
    if (value === undefined || value === null) continue;
    const key = `${api}:${field}`;
    if (logged.has(key)) continue;
    logged.add(key);
    log.debug({ api, field }, `'${field}' is accepted and ignored: it does not change the answer in Shimmy`);
  }
}
