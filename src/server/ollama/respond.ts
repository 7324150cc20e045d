import type { FastifyReply } from "fastify";
import type { DoneEvent, GenerationRequest } from "../../engine/types.js";
import type { ServerContext } from "../context.js";
import { abortOnDisconnect } from "../disconnect.js";
import { toOllamaError } from "./errors.js";
import { NdjsonWriter } from "./ndjson.js";

/** How a route puts text in its objects: chat `{message: {role, content}}`, generate `{response}`. */
export type TextField = (text: string) => object;

export const chatText: TextField = (text) => ({ message: { role: "assistant", content: text } });
export const generateText: TextField = (text) => ({ response: text });

/** Milliseconds (performance.now) → Ollama's nanoseconds. */
const ns = (ms: number): number => Math.round(ms * 1e6);

const head = (model: string) => ({ model, created_at: new Date().toISOString() });

/**
 * The closing object's measurements. prompt_eval_count is the whole prompt, as Ollama documents
 * it (clients sum it into usage); prompt_eval_duration covers only the part evaluated, since a
 * reused prefix costs nothing. load_duration is the time this request waited for the model to be
 * loaded (0 when it already was).
 */
function closing(done: DoneEvent, startedMs: number, loadMs: number) {
  return {
    done: true,
    done_reason: done.finishReason === "length" ? "length" : "stop",
    total_duration: ns(performance.now() - startedMs),
    load_duration: ns(loadMs),
    prompt_eval_count: done.usage.promptTokens,
    prompt_eval_duration: ns(done.timings.promptMs),
    eval_count: done.usage.completionTokens,
    eval_duration: ns(done.timings.generationMs),
  };
}

/**
 * Runs one generation for an Ollama route: a single object, or NDJSON lines ending in one with
 * `done: true` and the measurements. Everything that can fail before the first token fails with
 * its status code; an error after it is one more line, `{"error": "…"}`, as Ollama sends it.
 */
export async function respondOllama(
  ctx: ServerContext,
  reply: FastifyReply,
  request: Omit<GenerationRequest, "signal">,
  options: { stream: boolean; keepAliveMs: number | undefined; text: TextField },
): Promise<void> {
  const started = performance.now();
  await ctx.pool.use(
    request.model,
    async (loaded) => {
      const loadMs = performance.now() - started;
      const controller = abortOnDisconnect(reply);
      const prepared = loaded.prepare({ ...request, model: loaded.spec.name, signal: controller.signal });
      const model = loaded.spec.name;
      if (!options.stream) {
        const { text, done } = await loaded.complete(prepared);
        return void reply.send({ ...head(model), ...options.text(text), ...closing(done, started, loadMs) });
      }
      let out: NdjsonWriter | undefined;
      let done: DoneEvent;
      try {
        done = await loaded.generate(prepared, (text) => (out ??= new NdjsonWriter(reply)).send({ ...head(model), ...options.text(text), done: false }));
      } catch (e) {
        if (!out) throw e;
        const { body, internal } = toOllamaError(e, reply.request.id);
        if (internal) reply.log.error({ err: e }, "generation failed mid-stream");
        out.send(body);
        return out.end();
      }
      out ??= new NdjsonWriter(reply);
      // Nobody reads an aborted stream: end it without the closing object.
      if (done.finishReason !== "abort") out.send({ ...head(model), ...options.text(""), ...closing(done, started, loadMs) });
      out.end();
    },
    options.keepAliveMs,
  );
}

/**
 * An empty prompt or message list loads the model and answers `done_reason: "load"`; with
 * keep_alive 0 it unloads it instead (`"unload"`) — at once if idle, else when its last request
 * ends. Ollama answers these with one object even when streaming.
 */
export async function loadOrUnload(ctx: ServerContext, model: string, keepAliveMs: number | undefined, text: TextField): Promise<object> {
  if (keepAliveMs === 0) {
    await ctx.pool.unloadWhenIdle(model);
    return { ...head(model), ...text(""), done: true, done_reason: "unload" };
  }
  await ctx.pool.use(model, async () => undefined, keepAliveMs);
  return { ...head(model), ...text(""), done: true, done_reason: "load" };
}
