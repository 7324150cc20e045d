import websocket from "@fastify/websocket";
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import { registerAccess } from "./access.js";
import { registerAnthropic } from "./anthropic/routes.js";
import type { ServerContext } from "./context.js";
import { errorHandler } from "./error-handler.js";
import { registerTokenize } from "./native/tokenize.js";
import { registerWsGenerate } from "./native/ws-generate.js";
import { registerChat } from "./openai/chat.js";
import { registerCompletions } from "./openai/completions.js";
import { registerEmbeddings } from "./openai/embeddings.js";
import { ApiError } from "./errors.js";
import { toOpenAIError } from "./openai/errors.js";
import { registerModels } from "./openai/models.js";
import { registerOllama } from "./ollama/routes.js";
import { registerLimits } from "./limits.js";
import { registerHealth } from "./ops/health.js";
import { registerMetrics } from "./ops/metrics.js";
import { registerRefresh } from "./ops/refresh.js";
import { registerResponses } from "./responses/route.js";
import { registerJsonBody } from "./json-body.js";
import { registerSlots } from "./ops/slots.js";
import { transportOptions } from "./transport.js";
import { lazyValidator } from "./validation.js";
import { loadWebAssets } from "./web/assets.js";
import { registerWeb } from "./web/routes.js";

export interface AppOptions {
  logger?: FastifyServerOptions["logger"];
}

/** The Fastify app with every protocol plugin; listening is the caller's job. */
export async function buildApp(ctx: ServerContext, options: AppOptions = {}): Promise<FastifyInstance> {
  let requestCounter = 0;
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: ctx.config.bodyLimit,
    genReqId: () => `req-${(++requestCounter).toString(36)}`,
    ...transportOptions(ctx.config),
  });
  registerAccess(app, ctx.config);
  registerJsonBody(app, ctx.config.bodyLimit);
  registerLimits(app, ctx.config);
  if (ctx.metrics) registerMetrics(app, ctx.metrics);

  app.setValidatorCompiler(lazyValidator);

  app.setErrorHandler(
    errorHandler((err, requestId) => {
      const mapped = toOpenAIError(err, requestId);
      return { ...mapped, logMessage: mapped.body.error.message, logFields: { code: mapped.body.error.code } };
    }),
  );
  app.setNotFoundHandler((request, reply) => {
    const { status, body } = toOpenAIError(new ApiError(404, `Unknown route: ${request.method} ${request.url}`, "invalid_request_error", null, "not_found"), request.id);
    void reply.code(status).send(body);
  });

  registerWeb(app, loadWebAssets());
  await app.register(websocket, { options: { maxPayload: ctx.config.bodyLimit } });
  registerHealth(app, ctx);
  registerSlots(app, ctx);
  registerRefresh(app, ctx);
  registerModels(app, ctx);
  registerChat(app, ctx);
  registerCompletions(app, ctx);
  registerResponses(app, ctx);
  registerEmbeddings(app, ctx);
  registerWsGenerate(app, ctx);
  registerTokenize(app, ctx);
  await registerOllama(app, ctx);
  await registerAnthropic(app, ctx);
  return app;
}
