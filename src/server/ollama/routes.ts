import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ModelSpec } from "../../discovery/types.js";
import type { GenerationInput, ToolSpec } from "../../engine/types.js";
import type { ModelUse } from "../../engine/servability.js";
import type { ServerContext } from "../context.js";
import { errorHandler } from "../error-handler.js";
import { readBodyText, stepLargeBody } from "../json-body.js";
import { ApiError } from "../errors.js";
import { registerOllamaEmbed } from "./embed.js";
import { registerOllamaManage } from "./manage.js";
import { findByOllamaName } from "../../registry/ollama-names.js";
import { toOllamaError } from "./errors.js";
import { runningJson, showJson, tagJson } from "./models.js";
import { abortOnDisconnect } from "../disconnect.js";
import { runGeneration } from "../generation.js";
import { NdjsonWriter } from "./ndjson.js";
import { logIgnoredOnce } from "../ignored-fields.js";
import { type ChatBody, type GenerateBody, RUNNER_OPTIONS, constraintFrom, fromOptions, generateInput, keepAliveMs, logprobsFrom, messagesFrom, refuseUnsupportedGenerate, thinkFrom, toolsFrom } from "./request.js";
import { chatFields, generateFields, loadOrUnload, type OutputFields, ollamaTranslator } from "./respond.js";
import { chatBody, generateBody, showBody } from "./schemas.js";

/** A model by its Ollama name (`latest` implied); unknown or unservable names fail as the pool says (404 / 400). */
function resolveOllamaName(ctx: ServerContext, name: string, use: ModelUse = "generate"): ModelSpec {
  return ctx.pool.resolve(findByOllamaName(ctx.registry, name)?.name ?? name, use);
}

const notOffered = (what: string) => async () => {
  throw new ApiError(501, `${what} is not supported by Shimmy: it serves the models on disk (GGUF files, Ollama's store, the Hugging Face cache, SafeTensors folders); get one with /api/pull or shimmy pull, or put it there`);
};

/** Ollama's API under /api (docs/api.md), with Ollama's error envelope; its `GET /` probe is server/web's. */
export async function registerOllama(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  await app.register(
    async (api) => {
      api.setErrorHandler(
        errorHandler((err, requestId) => {
          const mapped = toOllamaError(err, requestId);
          return { ...mapped, logMessage: mapped.body.error };
        }),
      );
      api.setNotFoundHandler((request, reply) => void reply.code(404).send({ error: `unknown route: ${request.method} ${request.url}` }));
      // Ollama reads any body as JSON, whatever its content type: its documented `curl -d '{…}'`
      // sends a form type, and fetch() with a string body sends text/plain.
      api.removeAllContentTypeParsers();
      api.addContentTypeParser("*", (request, payload, done) => {
        readBodyText(request, payload, ctx.config.bodyLimit).then(async (text) => {
          await stepLargeBody(request);
          try {
            done(null, JSON.parse(text));
          } catch (e) {
            done(new ApiError(400, `the request body is not valid JSON: ${(e as Error).message}`), undefined);
          }
        }, (e: Error) => done(e, undefined));
      });

      /** Runs one Ollama generation: the request's common fields, its output fields, NDJSON or one object. */
      const generate = async (request: FastifyRequest, reply: FastifyReply, body: ChatBody | GenerateBody, model: string, input: GenerationInput, fields: OutputFields, keepAlive: number | undefined, tools?: ToolSpec[]): Promise<void> => {
        const { sampling, maxTokens, stop, contextLimit } = fromOptions(body.options);
        logIgnoredOnce(request.log, "ollama", body.options ?? {}, RUNNER_OPTIONS);
        const think = thinkFrom(body.think);
        const logprobs = logprobsFrom(body);
        const started = performance.now();
        await runGeneration(ctx, {
          model,
          request: { input, sampling, maxTokens, stop, contextLimit, tools, constraint: constraintFrom(body.format), reasoning: think.reasoning, templateVariables: think.templateVariables, logprobs },
          keepAliveMs: keepAlive,
          signal: abortOnDisconnect(reply).signal,
          translator: (loaded, loadMs) => ollamaTranslator(loaded.spec.name, fields, started, loadMs, { thinking: think.returned, logprobs: logprobs !== undefined }),
          openStream: body.stream !== false ? () => new NdjsonWriter(reply) : undefined,
          sendFull: (json) => void reply.send(json),
          requestId: request.id,
          log: request.log,
        });
      };

      api.post<{ Body: ChatBody }>("/chat", { schema: { body: chatBody } }, async (request, reply) => {
        const body = request.body;
        const spec = resolveOllamaName(ctx, body.model);
        const keepAlive = keepAliveMs(body.keep_alive);
        const messages = messagesFrom(body, spec.name);
        const tools = toolsFrom(body.tools);
        if (messages.length === 0) return loadOrUnload(ctx, spec.name, keepAlive, chatFields);
        await generate(request, reply, body, spec.name, { kind: "chat", messages }, chatFields, keepAlive, tools);
      });

      api.post<{ Body: GenerateBody }>("/generate", { schema: { body: generateBody } }, async (request, reply) => {
        const body = request.body;
        const spec = resolveOllamaName(ctx, body.model);
        const keepAlive = keepAliveMs(body.keep_alive);
        refuseUnsupportedGenerate(body, spec.name);
        if (!body.prompt) return loadOrUnload(ctx, spec.name, keepAlive, generateFields);
        await generate(request, reply, body, spec.name, generateInput(body, body.prompt, spec.summary?.hasChatTemplate === true), generateFields, keepAlive);
      });

      api.get("/tags", async () => ({ models: ctx.pool.servable().map(tagJson) }));
      api.get("/ps", async () => ({
        models: ctx.pool.info().flatMap((info) => {
          const spec = ctx.registry.find(info.name);
          return spec ? [runningJson(spec, info)] : [];
        }),
      }));
      api.post<{ Body: { model?: string; name?: string; verbose?: boolean | null } }>("/show", { schema: { body: showBody } }, async (request) =>
        showJson(resolveOllamaName(ctx, (request.body.model ?? request.body.name)!, "embed"), request.body.verbose === true),
      );
      api.get("/version", async () => ({ version: ctx.version }));

      registerOllamaEmbed(api, ctx, (name) => resolveOllamaName(ctx, name, "embed").name);
      registerOllamaManage(api, ctx);
      api.post("/push", notOffered("Pushing models"));
      api.post("/create", notOffered("Creating models"));
      api.post("/copy", notOffered("Copying models"));
      api.route({ method: ["HEAD", "POST"], url: "/blobs/:digest", handler: notOffered("Uploading blobs") });
    },
    { prefix: "/api" },
  );
}
