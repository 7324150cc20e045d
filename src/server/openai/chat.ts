import type { FastifyInstance } from "fastify";
import type { ServerContext } from "../context.js";
import { type ResponseShape, respond, wireFinish } from "./respond.js";
import { type ChatBody, maxTokensFrom, messagesFrom, refuseUnsupportedChat, samplingFrom, stopFrom } from "./request.js";
import { chatCompletionBody } from "./schemas.js";
import { timingsJson, usageJson } from "./usage.js";

const chatShape: ResponseShape = {
  idPrefix: "chatcmpl",
  full: (m, text, done) => ({
    id: m.id,
    object: "chat.completion",
    created: m.created,
    model: m.model,
    system_fingerprint: null,
    choices: [{ index: 0, message: { role: "assistant", content: text, refusal: null }, logprobs: null, finish_reason: wireFinish(done) }],
    usage: usageJson(done.usage),
    timings: timingsJson(done.usage, done.timings),
  }),
  opening: (m) => chunk(m, { role: "assistant", content: "" }, null),
  delta: (m, text) => chunk(m, { content: text }, null),
  finish: (m, done) => chunk(m, {}, wireFinish(done)),
};

function chunk(m: { id: string; created: number; model: string }, delta: object, finish: string | null) {
  return {
    id: m.id,
    object: "chat.completion.chunk",
    created: m.created,
    model: m.model,
    system_fingerprint: null,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  };
}

export function registerChat(app: FastifyInstance, ctx: ServerContext): void {
  app.post<{ Body: ChatBody }>("/v1/chat/completions", { schema: { body: chatCompletionBody } }, async (request, reply) => {
    const body = request.body;
    refuseUnsupportedChat(body);
    const spec = ctx.pool.resolve(body.model);
    const messages = messagesFrom(body, spec.name);
    await respond(
      ctx,
      reply,
      { model: spec.name, sampling: samplingFrom(body), maxTokens: maxTokensFrom(body), stop: stopFrom(body.stop) },
      { kind: "chat", messages },
      body.stream === true,
      body.stream_options?.include_usage === true,
      chatShape,
    );
  });
}
