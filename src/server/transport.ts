import { maxHeaderSize, type Server, STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import type { ConnectionError, FastifyError, FastifyInstance, FastifyHttpOptions, FastifyReply, FastifyRequest } from "fastify";
import type { Config } from "../config/config.js";
import { errorEnvelope } from "./access.js";

/**
 * Fastify options for what happens before a route runs (docs/security.md): how long a client
 * may take to send a request, and errors found while reading it — a malformed request, headers
 * too large, a bad URL — answered in the API's envelope instead of Fastify's.
 */

/** How often Node looks for requests past their timeouts: a quarter of the shortest, 10 ms to 30 s. */
function checkingIntervalMs(config: Pick<Config, "headersTimeoutMs" | "readTimeoutMs">): number {
  const limits = [config.headersTimeoutMs, config.readTimeoutMs].filter((t) => t > 0);
  return limits.length === 0 ? 30_000 : Math.min(30_000, Math.max(10, Math.min(...limits) / 4));
}

interface ClientErrorAnswer {
  status: number;
  message: string;
  code: string;
}

function describeClientError(err: ConnectionError & { reason?: string }, config: Pick<Config, "headersTimeoutMs" | "readTimeoutMs">): ClientErrorAnswer {
  if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") {
    return { status: 408, message: `The request was not received in time: headers must arrive within ${config.headersTimeoutMs / 1000} s and the whole request within ${config.readTimeoutMs / 1000} s.`, code: "request_timeout" };
  }
  if (err.code === "HPE_HEADER_OVERFLOW") return { status: 431, message: `The request headers are larger than ${maxHeaderSize} bytes.`, code: "headers_too_large" };
  return { status: 400, message: `Malformed HTTP request: ${err.reason ?? err.message}.`, code: "malformed_request" };
}

/**
 * The request line's target, for choosing the envelope: from the bytes that failed to parse, or
 * from the request Node had already read when its body timed out. Node keeps the latter on an
 * internal of the socket (`_httpMessage`, the response in progress), read defensively.
 */
function targetOf(err: ConnectionError, socket: Socket): string {
  const raw = err.rawPacket as unknown;
  if (Buffer.isBuffer(raw)) return /^[A-Z]+ (\S+)/.exec(raw.subarray(0, 2048).toString("latin1"))?.[1] ?? "/";
  return (socket as { _httpMessage?: { req?: { url?: string } } })._httpMessage?.req?.url ?? "/";
}

function responseStarted(socket: Socket): boolean {
  return (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
}

export type TransportOptions = Pick<FastifyHttpOptions<Server>, "requestTimeout" | "http" | "clientErrorHandler" | "frameworkErrors">;

export function transportOptions(config: Config): TransportOptions {
  return {
    // Node's requestTimeout covers receiving the request only; a streamed response is not cut.
    requestTimeout: config.readTimeoutMs,
    http: { headersTimeout: config.headersTimeoutMs, connectionsCheckingInterval: checkingIntervalMs(config) },
    // Fastify calls it bound to the instance.
    clientErrorHandler(this: FastifyInstance, err: ConnectionError, socket: Socket): void {
      if (err.code === "ECONNRESET" || socket.destroyed) return;
      const { status, message, code } = describeClientError(err, config);
      this.log.info({ status, err: err.code }, message);
      // A response already under way (a request refused before its body finished) cannot take a second one.
      if (!socket.writable || responseStarted(socket)) return void socket.destroy();
      const body = JSON.stringify(errorEnvelope(targetOf(err, socket), status, message, code));
      const head = `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n`;
      socket.end(head + body, () => socket.destroy());
    },
    frameworkErrors(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
      const status = err.statusCode ?? 400;
      const code = err.code === "FST_ERR_BAD_URL" ? "invalid_url" : err.code === "FST_ERR_MAX_PARAM_LENGTH" ? "url_too_long" : "invalid_request";
      request.log.info({ status, err: err.code }, err.message);
      void reply.code(status).send(errorEnvelope(request.url, status, `${err.message}.`, code));
    },
  };
}
