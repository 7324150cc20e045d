import type { FastifyReply } from "fastify";
import type { DoneEvent, GenerationRequest } from "../../engine/types.js";
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

    // Headers go out with the first token: a full queue (503) or a time limit reached while
    // queued (504) fails before it and keeps its status code instead of becoming an in-band error.
    let sse: SseWriter | undefined;
    const withUsage = (chunk: object): object => (includeUsage ? { ...chunk, usage: null } : chunk);
    const open = (): SseWriter => {
      const writer = new SseWriter(reply);
      const opening = shape.opening?.(meta);
      if (opening) writer.send(withUsage(opening));
      if (shape.prefix) writer.send(shape.delta(meta, shape.prefix));
      return writer;
    };
    let done: DoneEvent;
    try {
      done = await loaded.generate(prepared, (text) => (sse ??= open()).send(withUsage(shape.delta(meta, text))));
    } catch (e) {
      if (!sse) throw e;
      // Headers are gone; report in-band the way OpenAI does, then end the stream.
      const { body, internal } = toOpenAIError(e, reply.request.id);
      sse.send(body);
      if (internal) reply.log.error({ err: e }, "generation failed mid-stream");
      return sse.end();
    }
    sse ??= open();
    // Nobody reads an aborted stream: end it without a finish chunk.
    if (done.finishReason === "abort") return sse.end();
    const finish = shape.finish(meta, done);
    sse.send(withUsage(finish));
    if (includeUsage) {
      const { object } = finish as { object: string };
      sse.send({ id: meta.id, object, created: meta.created, model: meta.model, choices: [], usage: usageJson(done.usage), timings: timingsJson(done.usage, done.timings) });
    }
    sse.end();
  });
}
