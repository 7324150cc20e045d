import type { FastifyInstance } from "fastify";
import type { ServerContext } from "../context.js";
import { abortOnDisconnect } from "../disconnect.js";
import { stopList } from "../sampling-fields.js";
import { logIgnoredOnce } from "../ignored-fields.js";
import { type GenerationTranslator, runGeneration } from "../generation.js";
import { toOpenAIError } from "./errors.js";
import { completionId, unixNow } from "./ids.js";
import { completionLogprobs } from "./logprobs.js";
import { type CompletionBody, IGNORED_FIELDS, constraintFrom, maxTokensFrom, refuseUnsupportedCompletion, samplingFrom } from "./request.js";
import { completionBody } from "./schemas.js";
import { SseWriter } from "./sse.js";
import { summedUsage, timingsJson, usageJson, wireFinish } from "./usage.js";

interface Meta {
  id: string;
  created: number;
  model: string;
}

/** `echo` puts the prompt before each choice's text; log-prob offsets count from the start of that text. */
function completionTranslator(m: Meta, n: number, echo: string | undefined, includeUsage: boolean, logprobsTop: number | undefined): GenerationTranslator {
  const offsets = Array.from({ length: n }, () => echo?.length ?? 0);
  const choice = (index: number, text: string, finish: string | null, logprobs: object | null = null) => ({
    id: m.id,
    object: "text_completion",
    created: m.created,
    model: m.model,
    system_fingerprint: null,
    choices: [{ index, text, logprobs, finish_reason: finish }],
    ...(includeUsage ? { usage: null } : {}),
  });
  return {
    opening: () => (echo ? Array.from({ length: n }, (_, i) => choice(i, echo, null)) : []),
    delta: (i, d) => {
      const text = d.content ?? "";
      let logprobs: object | null = null;
      if (logprobsTop !== undefined && d.logprobs) {
        logprobs = completionLogprobs(d.logprobs, offsets[i]!);
        offsets[i]! += d.logprobs.reduce((sum, t) => sum + t.text.length, 0);
      }
      return [choice(i, text, null, logprobs)];
    },
    finish: (i, done) => [choice(i, "", wireFinish(done))],
    closing: (dones) => (includeUsage ? [{ id: m.id, object: "text_completion", created: m.created, model: m.model, system_fingerprint: null, choices: [], usage: usageJson(summedUsage(dones)) }] : []),
    error: (e, requestId) => toOpenAIError(e, requestId).body,
    full: (dones) => ({
      id: m.id,
      object: "text_completion",
      created: m.created,
      model: m.model,
      system_fingerprint: null,
      choices: dones.map((done, index) => ({
        index,
        text: (echo ?? "") + done.output.content,
        logprobs: logprobsTop !== undefined ? completionLogprobs(done.output.logprobs ?? [], echo?.length ?? 0) : null,
        finish_reason: wireFinish(done),
      })),
      usage: usageJson(summedUsage(dones)),
      timings: timingsJson(dones[0]!.usage, dones[0]!.timings),
    }),
  };
}

export function registerCompletions(app: FastifyInstance, ctx: ServerContext): void {
  app.post<{ Body: CompletionBody }>("/v1/completions", { schema: { body: completionBody } }, async (request, reply) => {
    const body = request.body;
    refuseUnsupportedCompletion(body);
    logIgnoredOnce(request.log, "openai", body, IGNORED_FIELDS);
    const prompt = typeof body.prompt === "string" ? body.prompt : body.prompt[0]!;
    // Legacy logprobs: an integer count of alternatives (true = 0); null, false and absent = none.
    const logprobsTop = body.logprobs == null || body.logprobs === false ? undefined : body.logprobs === true ? 0 : body.logprobs;
    const n = body.n ?? 1;
    await runGeneration(ctx, {
      model: ctx.pool.resolve(body.model).name,
      request: {
        input: { kind: "text", text: prompt },
        sampling: samplingFrom(body),
        maxTokens: maxTokensFrom(body) ?? 16,
        stop: stopList(body.stop),
        constraint: constraintFrom(body),
        logprobs: logprobsTop !== undefined ? { top: logprobsTop } : undefined,
      },
      n,
      signal: abortOnDisconnect(reply).signal,
      translator: (loaded) => completionTranslator({ id: completionId("cmpl"), created: unixNow(), model: loaded.spec.name }, n, body.echo ? prompt : undefined, body.stream_options?.include_usage === true, logprobsTop),
      openStream: body.stream === true ? () => new SseWriter(reply) : undefined,
      sendFull: (json) => void reply.send(json),
      requestId: request.id,
      log: request.log,
    });
  });
}
