import type { FastifyReply } from "fastify";

/**
 * An AbortSignal that fires when the client goes away before the response is finished, so its
 * generation stops within one token and frees the slot.
 */
export function abortOnDisconnect(reply: FastifyReply): AbortController {
  const controller = new AbortController();
  const res = reply.raw;
  const onClose = (): void => {
    if (!res.writableFinished) controller.abort(new Error("client disconnected"));
  };
  res.once("close", onClose);
  return controller;
}
