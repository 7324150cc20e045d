import type { FastifyInstance } from "fastify";
import type { WebSocket } from "ws";
import type { GenerationRequest } from "../../engine/types.js";
import type { ServerContext } from "../context.js";
import { ApiError, toOpenAIError } from "../openai/errors.js";
import { type ChatBody, messagesFrom, samplingFrom, stopFrom } from "../openai/request.js";

/**
 * Shimmy's WebSocket: the client sends one JSON request; the server answers with JSON frames
 * `{"type":"token","text"}` …, then `{"type":"done","done":true,"finish_reason","usage"}`, and
 * closes. Bad requests get `{"type":"error","error":{…}}` and a clean close (1008/1011).
 * Documented in docs/api.md.
 */
interface WsRequest {
  model?: unknown;
  prompt?: unknown;
  messages?: unknown;
  max_tokens?: unknown;
  temperature?: unknown;
  top_p?: unknown;
  top_k?: unknown;
  min_p?: unknown;
  seed?: unknown;
  stop?: unknown;
  presence_penalty?: unknown;
  frequency_penalty?: unknown;
}

const ALLOWED = new Set(["model", "prompt", "messages", "max_tokens", "temperature", "top_p", "top_k", "min_p", "seed", "stop", "presence_penalty", "frequency_penalty"]);

function num(body: WsRequest, key: keyof WsRequest, min: number, max: number, integer = false): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw new ApiError(400, `'${key}' must be ${integer ? "an integer" : "a number"} in [${min}, ${max}]`, "invalid_request_error", key, "invalid_value");
  }
  return v;
}

function parseRequest(raw: string): { model: string; base: Omit<GenerationRequest, "model" | "signal">; body: WsRequest } {
  let body: WsRequest;
  try {
    body = JSON.parse(raw);
  } catch (e) {
    throw new ApiError(400, `frame is not valid JSON: ${(e as Error).message}`, "invalid_request_error", null, "invalid_json");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new ApiError(400, "frame must be a JSON object", "invalid_request_error", null, "invalid_json");
  for (const k of Object.keys(body)) if (!ALLOWED.has(k)) throw new ApiError(400, `Unrecognized request argument supplied: ${k}`, "invalid_request_error", k, "unknown_parameter");
  if (typeof body.model !== "string" || body.model === "") throw new ApiError(400, "'model' is required", "invalid_request_error", "model", "missing_required_parameter");
  if ((body.prompt === undefined) === (body.messages === undefined)) throw new ApiError(400, "send exactly one of 'prompt' or 'messages'", "invalid_request_error", "prompt");
  if (body.prompt !== undefined && typeof body.prompt !== "string") throw new ApiError(400, "'prompt' must be a string", "invalid_request_error", "prompt");
  if (body.messages !== undefined && (!Array.isArray(body.messages) || body.messages.length === 0)) throw new ApiError(400, "'messages' must be a non-empty array", "invalid_request_error", "messages");
  let stop: string[] = [];
  if (body.stop !== undefined && body.stop !== null) {
    if (typeof body.stop === "string") stop = [body.stop];
    else if (Array.isArray(body.stop) && body.stop.every((s) => typeof s === "string" && s.length > 0)) stop = body.stop as string[];
    else throw new ApiError(400, "'stop' must be a string or an array of strings", "invalid_request_error", "stop");
  }
  const samplingBody = {
    model: body.model,
    temperature: num(body, "temperature", 0, 2),
    top_p: num(body, "top_p", 0, 1),
    top_k: num(body, "top_k", 0, 1e9, true),
    min_p: num(body, "min_p", 0, 1),
    seed: num(body, "seed", -(2 ** 53), 2 ** 53, true),
    presence_penalty: num(body, "presence_penalty", -2, 2),
    frequency_penalty: num(body, "frequency_penalty", -2, 2),
  };
  const maxTokens = num(body, "max_tokens", 1, 1e9, true);
  const input: GenerationRequest["input"] =
    body.prompt !== undefined
      ? { kind: "text", text: body.prompt as string }
      : { kind: "chat", messages: messagesFrom({ ...samplingBody, messages: validMessages(body.messages as unknown[]) } as ChatBody, body.model) };
  // Like Shimmy's CLI, the WebSocket defaults to greedy decoding unless a temperature is sent.
  const sampling = samplingFrom({ ...samplingBody, temperature: samplingBody.temperature ?? 0 });
  return { model: body.model, base: { input, sampling, maxTokens, stop: stopFrom(stop) }, body };
}

function validMessages(messages: unknown[]): ChatBody["messages"] {
  return messages.map((m, i) => {
    const msg = m as { role?: unknown; content?: unknown };
    if (typeof msg !== "object" || msg === null || !["system", "developer", "user", "assistant", "tool"].includes(String(msg.role))) {
      throw new ApiError(400, `messages[${i}].role must be system, user, assistant or tool`, "invalid_request_error", `messages[${i}].role`);
    }
    if (typeof msg.content !== "string") throw new ApiError(400, `messages[${i}].content must be a string`, "invalid_request_error", `messages[${i}].content`);
    return { role: String(msg.role), content: msg.content };
  });
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
            for await (const ev of loaded.generate(prepared)) {
              if (socket.readyState !== socket.OPEN) break;
              if (ev.type === "token") socket.send(JSON.stringify({ type: "token", text: ev.text }));
              else {
                socket.send(JSON.stringify({
                  type: "done",
                  done: true,
                  model: loaded.spec.name,
                  finish_reason: ev.finishReason,
                  usage: { prompt_tokens: ev.usage.promptTokens, completion_tokens: ev.usage.completionTokens, total_tokens: ev.usage.promptTokens + ev.usage.completionTokens, cached_tokens: ev.usage.cachedTokens },
                }));
                socket.close(1000, "done");
              }
            }
          });
        } catch (e) {
          fail(e);
        }
      })();
    });
  });
}
