import type { FastifyInstance } from "fastify";
import type { WebSocket } from "ws";
import type { GenerationRequest } from "../../engine/types.js";
import type { ServerContext } from "../context.js";
import { type AjvError, ApiError, classifyError, fromValidation } from "../errors.js";
import { runGeneration } from "../generation.js";
import { samplingFromFields, stopList } from "../sampling-fields.js";
import { lazyValidator } from "../validation.js";

/**
 * Shimmy's WebSocket: the client sends one JSON request; the server answers with JSON frames
 * `{"type":"token","text"}` …, then `{"type":"done","done":true,"finish_reason","usage"}`, and
 * closes. Bad requests get `{"type":"error","error":{…}}` and a clean close (1008/1011).
 * Documented in docs/api.md.
 */
const number = (extra: object = {}) => ({ type: ["number", "null"], ...extra });
const wsRequest = {
  type: "object",
  required: ["model"],
  properties: {
    model: { type: "string", minLength: 1 },
    prompt: { type: "string" },
    messages: {
      type: "array",
      minItems: 1,
      items: { type: "object", required: ["role", "content"], properties: { role: { enum: ["system", "user", "assistant"] }, content: { type: "string" } }, additionalProperties: false },
    },
    max_tokens: { type: ["integer", "null"], minimum: 1 },
    temperature: number({ minimum: 0, maximum: 2 }),
    top_p: number({ minimum: 0, maximum: 1 }),
    top_k: { type: ["integer", "null"], minimum: 0 },
    min_p: number({ minimum: 0, maximum: 1 }),
    seed: { type: ["integer", "null"] },
    stop: { anyOf: [{ type: "string", minLength: 1 }, { type: "array", items: { type: "string", minLength: 1 }, maxItems: 16 }, { type: "null" }] },
    presence_penalty: number({ minimum: -2, maximum: 2 }),
    frequency_penalty: number({ minimum: -2, maximum: 2 }),
  },
  oneOf: [{ required: ["prompt"] }, { required: ["messages"] }],
  additionalProperties: false,
} as const;

interface WsRequest {
  model: string;
  prompt?: string;
  messages?: { role: "system" | "user" | "assistant"; content: string }[];
  max_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  min_p?: number | null;
  seed?: number | null;
  stop?: string | string[] | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
}

const validateRequest = lazyValidator({ schema: wsRequest });

function parseRequest(raw: string): { model: string; request: Omit<GenerationRequest, "model" | "signal"> } {
  let body: WsRequest;
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
  return {
    model: body.model,
    request: {
      input: body.prompt !== undefined ? { kind: "text", text: body.prompt } : { kind: "chat", messages: body.messages! },
      // Like Shimmy's CLI, the WebSocket defaults to greedy decoding unless a temperature is sent.
      sampling: samplingFromFields(body, 0),
      maxTokens: body.max_tokens ?? undefined,
      stop: stopList(body.stop),
      // One frame per token of text, reasoning included: this protocol has no field for it.
      reasoning: "inline",
    },
  };
}

export function registerWsGenerate(app: FastifyInstance, ctx: ServerContext): void {
  app.get("/ws/generate", { websocket: true }, (socket: WebSocket, request) => {
    const controller = new AbortController();
    let started = false;
    socket.on("close", () => controller.abort(new Error("client disconnected")));
    const errorFrame = (err: unknown) => {
      const { error } = classifyError(err, request.id);
      return { type: "error", error: { message: error.message, type: error.type, param: error.param, code: error.code } };
    };
    const fail = (err: unknown): void => {
      const { internal } = classifyError(err, request.id);
      if (internal) request.log.error({ err }, "websocket generation failed");
      if (socket.readyState === socket.OPEN) {
        const frame = errorFrame(err);
        socket.send(JSON.stringify(frame));
        socket.close(internal ? 1011 : 1008, frame.error.code ?? "error");
      }
    };
    const send = (frame: object): void => {
      if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(frame));
    };
    socket.on("message", (data, isBinary) => {
      if (started) return fail(new ApiError(400, "one request per connection; open a new connection for the next", "invalid_request_error", null, "protocol_error"));
      started = true;
      void (async () => {
        try {
          if (isBinary) throw new ApiError(400, "send the request as a text frame", "invalid_request_error", null, "invalid_json");
          const { model, request: generation } = parseRequest(data.toString());
          await runGeneration(ctx, {
            model,
            request: generation,
            signal: controller.signal,
            translator: (loaded) => ({
              delta: (_choice, d) => (d.content ? [{ type: "token", text: d.content }] : []),
              finish: (_choice, done) => [
                {
                  type: "done",
                  done: true,
                  model: loaded.spec.name,
                  finish_reason: done.finishReason,
                  usage: { prompt_tokens: done.usage.promptTokens, completion_tokens: done.usage.completionTokens, total_tokens: done.usage.promptTokens + done.usage.completionTokens, cached_tokens: done.usage.cachedTokens },
                },
              ],
              error: (e) => errorFrame(e),
              full: () => ({}),
            }),
            openStream: () => {
              let closeCode = 1000;
              let reason = "done";
              return {
                send: (frame) => {
                  const error = (frame as { type?: string; error?: { type: string; code: string | null } }).type === "error" ? (frame as { error: { type: string; code: string | null } }).error : undefined;
                  if (error) [closeCode, reason] = [error.type === "server_error" ? 1011 : 1008, error.code ?? "error"];
                  send(frame);
                },
                end: () => {
                  if (socket.readyState === socket.OPEN) socket.close(closeCode, reason);
                },
              };
            },
            sendFull: () => undefined,
            requestId: request.id,
            log: request.log,
          });
        } catch (e) {
          fail(e);
        }
      })();
    });
  });
}
