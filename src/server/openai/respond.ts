import type { FastifyReply } from "fastify";
import type { DoneEvent, GenerationEvent, GenerationRequest } from "../../engine/types.js";
import type { ServerContext } from "../context.js";
import { abortOnDisconnect } from "../disconnect.js";
import { toOpenAIError } from "./errors.js";
import { completionId, unixNow } from "./ids.js";
import type { BaseRequest } from "./request.js";
import { SseWriter } from "./sse.js";
import { timingsJson, usageJson } from "./usage.js";

/** How one OpenAI route shapes its objects; the generation flow is shared. */
export interface ResponseShape {
  idPrefix: "chatcmpl" | "cmpl";
  /** Text put before the generated text (completions `echo`). */
  prefix?: string;
  full(meta: Meta, text: string, done: DoneEvent): object;
  /** First stream chunk (chat: the assistant role), or undefined. */
  opening?(meta: Meta): object;
  delta(meta: Meta, text: string): object;
  finish(meta: Meta, done: DoneEvent): object;
}

export interface Meta {
  id: string;
  created: number;
  model: string;
}

/** Finish reasons on the wire: an aborted stream has nobody to read it, but say "stop". */
export const wireFinish = (d: DoneEvent): "stop" | "length" => (d.finishReason === "length" ? "length" : "stop");

/**
 * Runs one generation for an OpenAI route: everything that can fail (model lookup, load,
 * tokenization, context size) fails before the first byte, so errors keep their status code.
 */
export async function respond(
  ctx: ServerContext,
  reply: FastifyReply,
  base: BaseRequest,
  input: GenerationRequest["input"],
  stream: boolean,
  includeUsage: boolean,
  shape: ResponseShape,
): Promise<void> {
  await ctx.pool.use(base.model, async (loaded) => {
    const controller = abortOnDisconnect(reply);
    const prepared = loaded.prepare({ ...base, input, signal: controller.signal });
    const meta: Meta = { id: completionId(shape.idPrefix), created: unixNow(), model: loaded.spec.name };
    if (!stream) {
      const { text, done } = await loaded.complete(prepared);
      return void reply.send(shape.full(meta, (shape.prefix ?? "") + text, done));
    }

    const events = loaded.generate(prepared);

    // Wait for a slot and the first event before sending headers: a full queue (503) or a time
    // limit reached while queued (504) keeps its status code instead of becoming an in-band error.
    const first = await events.next();
    async function* rest(): AsyncGenerator<GenerationEvent> {
      if (!first.done) yield first.value;
      yield* events;
    }
    const sse = new SseWriter(reply);
    try {
      const opening = shape.opening?.(meta);
      if (opening) sse.send(includeUsage ? { ...opening, usage: null } : opening);
      if (shape.prefix) sse.send(shape.delta(meta, shape.prefix));
      for await (const ev of rest()) {
        if (ev.type === "token") {
          const chunk = shape.delta(meta, ev.text);
          sse.send(includeUsage ? { ...chunk, usage: null } : chunk);
          continue;
        }
        if (ev.finishReason === "abort") break;
        const finish = shape.finish(meta, ev);
        sse.send(includeUsage ? { ...finish, usage: null } : finish);
        if (includeUsage) {
          const { object } = finish as { object: string };
          sse.send({ id: meta.id, object, created: meta.created, model: meta.model, choices: [], usage: usageJson(ev.usage), timings: timingsJson(ev.usage, ev.timings) });
        }
      }
    } catch (e) {
      // Headers are gone; report in-band the way OpenAI does, then end the stream.
      const { body, internal } = toOpenAIError(e, reply.request.id);
      sse.send(body);
      if (internal) reply.log.error({ err: e }, "generation failed mid-stream");
    } finally {
      sse.end();
    }
  });
}
