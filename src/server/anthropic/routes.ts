import type { FastifyInstance } from "fastify";
import type { ServerContext } from "../context.js";
import { abortOnDisconnect } from "../disconnect.js";
import { errorHandler } from "../error-handler.js";
import { runGeneration } from "../generation.js";
import { anthropicErrorBody, toAnthropicError } from "./errors.js";
import { type MessagesBody, type PromptBody, promptRequest, samplingFrom } from "./request.js";
import { messageId, messagesTranslator } from "./respond.js";
import { countTokensBody, messagesBody } from "./schemas.js";
import { NamedEventSse } from "../named-sse.js";

/** Anthropic's Messages API under /v1/messages (docs/api.md), with Anthropic's error envelope. */
export async function registerAnthropic(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  await app.register(
    async (api) => {
      api.setErrorHandler(
        errorHandler((err, requestId) => {
          const mapped = toAnthropicError(err, requestId);
          return { ...mapped, logMessage: mapped.body.error.message, logFields: { type: mapped.body.error.type } };
        }),
      );
      api.setNotFoundHandler((request, reply) => void reply.code(404).send(anthropicErrorBody(404, `Unknown route: ${request.method} ${request.url}`)));

      api.post<{ Body: MessagesBody }>("", { schema: { body: messagesBody } }, async (request, reply) => {
        const body = request.body;
        const spec = ctx.pool.resolve(body.model);
        const { request: prompt, thinkingReturned } = promptRequest(body, spec.name, body.max_tokens);
        await runGeneration(ctx, {
          model: spec.name,
          request: { ...prompt, sampling: samplingFrom(body), maxTokens: body.max_tokens, stop: body.stop_sequences ?? [] },
          signal: abortOnDisconnect(reply).signal,
          translator: (loaded, _loadMs, promptTokens) => messagesTranslator({ id: messageId(), model: loaded.spec.name, promptTokens, thinkingReturned }),
          openStream: body.stream === true ? () => new NamedEventSse(reply) : undefined,
          sendFull: (json) => void reply.send(json),
          requestId: request.id,
          log: request.log,
        });
      });

      // The prompt /v1/messages would render for the same body, tokenized by the model itself.
      api.post<{ Body: PromptBody }>("/count_tokens", { schema: { body: countTokensBody } }, async (request) => {
        const spec = ctx.pool.resolve(request.body.model);
        const { request: prompt } = promptRequest(request.body, spec.name);
        const inputTokens = await ctx.pool.use(spec.name, async (loaded) => (await loaded.prepare({ ...prompt, model: loaded.spec.name, sampling: { temperature: 1 }, stop: [] })).promptTokens.length);
        return { input_tokens: inputTokens };
      });
    },
    { prefix: "/v1/messages" },
  );
}
