import type { FastifyInstance } from "fastify";
import type { WebSocket } from "ws";
import type { GenerationRequest } from "../../engine/types.js";
import type { ServerContext } from "../context.js";
import { type AjvError, ApiError, fromValidation, toOpenAIError } from "../openai/errors.js";
import { type ChatBody, messagesFrom, samplingFrom, stopFrom } from "../openai/request.js";
import { wsGenerateRequest } from "../openai/schemas.js";
import { lazyValidator } from "../validation.js";

/**
 * Shimmy's WebSocket: the client sends one JSON request; the server answers with JSON frames
 * `{"type":"token","text"}` …, then `{"type":"done","done":true,"finish_reason","usage"}`, and
 * closes. Bad requests get `{"type":"error","error":{…}}` and a clean close (1008/1011).
 * Documented in docs/api.md.
 */
const validateRequest = lazyValidator({ schema: wsGenerateRequest });

function parseRequest(raw: string): { model: string; base: Omit<GenerationRequest, "model" | "signal"> } {
  let body: ChatBody & { prompt?: string };
  try {
    body = JSON.parse(raw);
  } catch (e) {
    throw new ApiError(400, `frame is not valid JSON: ${(e as Error).message}`, "invalid_request_error", null, "invalid_json");
  }
  if (!validateRequest(body)) {
    const errors = (validateRequest.errors ?? []) as AjvError[];
    // Both or neither of prompt/messages fail the oneOf (or one of its required branches).
    if (errors[0]?.keyword === "oneOf" || (errors[0] as { schemaPath?: string } | undefined)?.schemaPath?.startsWith("#/oneOf")) throw new ApiError(400, "send exactly one of 'prompt' or 'messages'", "invalid_request_error", "prompt", "invalid_value");
    throw fromValidation(errors);
  }
  const input: GenerationRequest["input"] = body.prompt !== undefined ? { kind: "text", text: body.prompt } : { kind: "chat", messages: messagesFrom(body, body.model) };
  // Like Shimmy's CLI, the WebSocket defaults to greedy decoding unless a temperature is sent.
  const sampling = samplingFrom({ ...body, temperature: body.temperature ?? 0 });
  return { model: body.model, base: { input, sampling, maxTokens: body.max_tokens ?? undefined, stop: stopFrom(body.stop) } };
}

export function registerWsGenerate(app: FastifyInstance, ctx: ServerContext): void {
  app.get("/ws/generate", { websocket: true }, (socket: WebSocket, request) => {
    const controller = new AbortController();
    let started = false;
    socket.on("close", () => controller.abort(new Error("client disconnected")));
    const fail = (err: unknown): void => {
      const { body, internal } = toOpenAIError(err, request.id);
      if (internal) request.log.error({ err }, "websocket generation failed");
      if (socket.readyState === socket.OPEN) {
        socket.send(JSON.stringify({ type: "error", error: body.error }));
        socket.close(internal ? 1011 : 1008, body.error.code ?? "error");
      }
    };
    socket.on("message", (data, isBinary) => {
      if (started) return fail(new ApiError(400, "one request per connection; open a new connection for the next", "invalid_request_error", null, "protocol_error"));
      started = true;
      void (async () => {
        try {
          if (isBinary) throw new ApiError(400, "send the request as a text frame", "invalid_request_error", null, "invalid_json");
          const { model, base } = parseRequest(data.toString());
          await ctx.pool.use(model, async (loaded) => {
            const prepared = loaded.prepare({ ...base, model: loaded.spec.name, signal: controller.signal });
            const send = (frame: object): void => {
              if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(frame));
            };
            const done = await loaded.generate(prepared, (text) => send({ type: "token", text }));
            send({
              type: "done",
              done: true,
              model: loaded.spec.name,
              finish_reason: done.finishReason,
              usage: { prompt_tokens: done.usage.promptTokens, completion_tokens: done.usage.completionTokens, total_tokens: done.usage.promptTokens + done.usage.completionTokens, cached_tokens: done.usage.cachedTokens },
            });
            if (socket.readyState === socket.OPEN) socket.close(1000, "done");
          });
        } catch (e) {
          fail(e);
        }
      })();
    });
  });
}
