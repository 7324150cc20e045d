import type { FastifyInstance } from "fastify";
import type { ServerContext } from "../context.js";
import { abortOnDisconnect } from "../disconnect.js";
import { runGeneration } from "../generation.js";
import { type ResponsesBody, generationRequest, refuseUnsupported, wantsLogprobs } from "./request.js";
import { responseMeta } from "./response.js";
import { responsesBody } from "./schemas.js";
import { NamedEventSse } from "../named-sse.js";
import { ResponsesTranslator } from "./stream.js";

/** `POST /v1/responses`: OpenAI's Responses API, stateless (docs/api.md). */
export function registerResponses(app: FastifyInstance, ctx: ServerContext): void {
  app.post<{ Body: ResponsesBody }>("/v1/responses", { schema: { body: responsesBody } }, async (request, reply) => {
    const body = request.body;
    refuseUnsupported(body);
    const spec = ctx.pool.resolve(body.model);
    await runGeneration(ctx, {
      model: spec.name,
      request: generationRequest(body, spec.name),
      signal: abortOnDisconnect(reply).signal,
      translator: (loaded) => new ResponsesTranslator(responseMeta(body, loaded.spec.name, wantsLogprobs(body))),
      openStream: body.stream === true ? () => new NamedEventSse(reply) : undefined,
      sendFull: (json) => void reply.send(json),
      requestId: request.id,
      log: request.log,
    });
  });
}
