import { errorCodes, type FastifyInstance, type FastifyRequest } from "fastify";
import { StringDecoder } from "node:string_decoder";
import { setImmediate as nextTurn } from "node:timers/promises";

/** Bodies from this size are handled in steps, each in its own event-loop turn (parse, validate, handle). */
const STEPPED_BODY_BYTES = 256 * 1024;
const steppedRequests = new WeakSet<FastifyRequest>();

/**
 * A request body read as UTF-8 text chunk by chunk as it arrives, so that decoding a large body
 * is spread over its socket reads instead of one block at the end (Fastify's reader decodes the
 * whole body at once). The byte limit and Content-Length are enforced as Fastify does.
 */
export function readBodyText(request: FastifyRequest, payload: NodeJS.ReadableStream & { receivedEncodedLength?: number }, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(request.headers["content-length"]);
    if (declared > limit) return reject(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
    const decoder = new StringDecoder("utf8");
    const parts: string[] = [];
    let received = 0;
    const finish = (error?: Error) => {
      payload.removeListener("data", onData);
      payload.removeListener("end", onEnd);
      payload.removeListener("error", onEnd);
      if (error) reject(error);
    };
    const onData = (chunk: Buffer | string) => {
      const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      received += bytes.length;
      if (received > limit || (payload.receivedEncodedLength ?? 0) > limit) return finish(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
      parts.push(decoder.write(bytes));
    };
    const onEnd = (error?: Error & { statusCode?: number }) => {
      if (error) {
        if (!(typeof error.statusCode === "number" && error.statusCode >= 400)) error.statusCode = 400;
        return finish(error);
      }
      finish();
      if (!Number.isNaN(declared) && (payload.receivedEncodedLength || received) !== declared) return reject(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
      parts.push(decoder.end());
      if (received >= STEPPED_BODY_BYTES) steppedRequests.add(request);
      resolve(parts.join(""));
    };
    payload.on("data", onData);
    payload.on("end", onEnd);
    payload.on("error", onEnd);
    payload.resume();
  });
}

/** Lets the event loop run between the steps of a large body's handling: each step stays one bounded block. */
export async function stepLargeBody(request: FastifyRequest): Promise<void> {
  if (steppedRequests.has(request)) await nextTurn();
}

/**
 * Replaces Fastify's JSON body parser with one that decodes as the body arrives (same protections:
 * `__proto__` / `constructor` keys refused), and gives a large body's parsing, validation and
 * handling an event-loop turn each.
 */
export function registerJsonBody(app: FastifyInstance, limit: number): void {
  const parse = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", (request, payload, done) => {
    readBodyText(request, payload, limit).then(
      (text) => stepLargeBody(request).then(() => parse(request, text, done)),
      (e: Error) => done(e, undefined),
    );
  });
  app.addHook("preValidation", stepLargeBody);
  app.addHook("preHandler", stepLargeBody);
}
