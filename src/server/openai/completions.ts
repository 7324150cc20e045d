import type { FastifyInstance } from "fastify";
import type { ServerContext } from "../context.js";
import { type Meta, type ResponseShape, respond, wireFinish } from "./respond.js";
import { type CompletionBody, maxTokensFrom, refuseUnsupportedCompletion, samplingFrom, stopFrom } from "./request.js";
import { completionBody } from "./schemas.js";
import { timingsJson, usageJson } from "./usage.js";

function choice(m: Meta, text: string, finish: string | null) {
  return { id: m.id, object: "text_completion", created: m.created, model: m.model, system_fingerprint: null, choices: [{ index: 0, text, logprobs: null, finish_reason: finish }] };
}

export function registerCompletions(app: FastifyInstance, ctx: ServerContext): void {
  app.post<{ Body: CompletionBody }>("/v1/completions", { schema: { body: completionBody } }, async (request, reply) => {
    const body = request.body;
    refuseUnsupportedCompletion(body);
    const prompt = typeof body.prompt === "string" ? body.prompt : body.prompt[0]!;
    const shape: ResponseShape = {
      idPrefix: "cmpl",
      prefix: body.echo ? prompt : undefined,
      full: (m, text, done) => ({ ...choice(m, text, wireFinish(done)), usage: usageJson(done.usage), timings: timingsJson(done.usage, done.timings) }),
      delta: (m, text) => choice(m, text, null),
      finish: (m, done) => choice(m, "", wireFinish(done)),
    };
    await respond(
      ctx,
      reply,
      { model: ctx.pool.resolve(body.model).name, sampling: samplingFrom(body), maxTokens: maxTokensFrom(body) ?? 16, stop: stopFrom(body.stop) },
      { kind: "text", text: prompt },
      body.stream === true,
      body.stream_options?.include_usage === true,
      shape,
    );
  });
}
