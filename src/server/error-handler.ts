import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";

/** An error as one API's envelope: status, body, whether it is a bug, extra headers, and a line for the log. */
export interface MappedError {
  status: number;
  body: object;
  internal: boolean;
  headers?: Record<string, string>;
  logMessage: string;
  /** Extra fields for that log line. */
  logFields?: object;
}

/**
 * A Fastify error handler answering in one API's envelope: bugs are logged with their stack,
 * client errors in one line; nothing is sent once the response has started.
 */
export function errorHandler(toEnvelope: (err: unknown, requestId: string) => MappedError) {
  return (err: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    const { status, body, internal, headers, logMessage, logFields } = toEnvelope(err, request.id);
    if (internal) request.log.error({ err }, "unhandled error");
    else request.log.info({ status, ...logFields }, logMessage);
    if (reply.sent || reply.raw.headersSent) return;
    if (headers) void reply.headers(headers);
    void reply.code(status).send(body);
  };
}
