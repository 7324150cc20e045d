import type { FastifyBaseLogger } from "fastify";
import { forChoice, type LoadedModel } from "../engine/loaded-model.js";
import type { DoneEvent, GenerationRequest, OutputDelta } from "../engine/types.js";
import type { ServerContext } from "./context.js";
import { classifyError, invalidParam } from "./errors.js";
import { checkMessageCount } from "./limits.js";

/** How a protocol's frames reach the client: SSE events, NDJSON lines, WebSocket messages. */
export interface StreamFraming {
  send(frame: object): void;
  end(): void;
}

/**
 * One protocol's translation of a generation into its wire objects. Streaming uses `opening`,
 * `delta`, `finish`, `closing` and `error`; a single answer uses `full`.
 */
export interface GenerationTranslator {
  opening?(): object[];
  delta(choice: number, delta: OutputDelta): object[];
  finish(choice: number, done: DoneEvent): object[];
  /** After every choice finished (e.g. a usage chunk, Ollama's closing object). */
  closing?(dones: DoneEvent[]): object[];
  /** An error after the stream has started, as one in-band frame. */
  error(err: unknown, requestId: string): object;
  full(dones: DoneEvent[]): object;
}

export interface GenerationRun {
  /** The model as the request named it (resolved by the pool). */
  model: string;
  request: Omit<GenerationRequest, "model" | "signal">;
  /** Choices generated from the one prompt (OpenAI's n); each its own sequence and sampler. */
  n?: number;
  keepAliveMs?: number;
  signal: AbortSignal;
  /** The protocol's translator, made once the prompt is prepared (it may need the model's name, load time or prompt size). */
  translator(loaded: LoadedModel, loadMs: number, promptTokens: number): GenerationTranslator;
  /** Opens the stream (sends headers); called lazily, with the first frame. Absent: one answer. */
  openStream?: () => StreamFraming;
  /** Sends the single answer. */
  sendFull(body: object): void;
  requestId: string;
  log: FastifyBaseLogger;
}

/**
 * Runs a generation for any protocol. Everything that can fail (model lookup, load,
 * tokenization, context size, grammar) fails before the first byte, so its error keeps its status
 * code; the stream opens with the first frame, so a full queue (503) or the time limit reached
 * while queued (504) is an HTTP error too. After that an error is one in-band frame, and a client
 * that went away gets no closing frames.
 */
export async function runGeneration(ctx: ServerContext, run: GenerationRun): Promise<void> {
  if (run.request.input.kind === "chat") checkMessageCount(run.request.input.messages.length, ctx.config);
  const started = performance.now();
  await ctx.pool.use(
    run.model,
    async (loaded) => {
      const loadMs = performance.now() - started;
      const prepared = await loaded.prepare({ ...run.request, model: loaded.spec.name, signal: run.signal });
      const translator = run.translator(loaded, loadMs, prepared.promptTokens.length);
      const n = run.n ?? 1;
      // Each choice holds a slot for its whole generation; more than the model has would queue behind itself.
      if (n > loaded.slots.slots.length) throw invalidParam("n", `n is at most ${loaded.slots.slots.length} for "${loaded.spec.name}" (its parallel slots; start \`shimmy serve --parallel N\` for more).`, "invalid_value");
      // One failing choice stops the others.
      const stopAll = new AbortController();
      const signal = AbortSignal.any([run.signal, stopAll.signal]);
      const choices = Array.from({ length: n }, (_, i) => forChoice({ ...prepared, request: { ...prepared.request, signal } }, i));
      const generateAll = async (onDelta: (choice: number, delta: OutputDelta) => void): Promise<DoneEvent[]> => {
        // Settled, not all: every choice must have stopped decoding before the model is let go.
        const results = await Promise.allSettled(
          choices.map((p, i) =>
            loaded.generate(p, (delta) => onDelta(i, delta)).catch((e: unknown) => {
              stopAll.abort(e);
              throw e;
            }),
          ),
        );
        const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
        if (failed) throw failed.reason;
        const dones = results.map((r) => (r as PromiseFulfilledResult<DoneEvent>).value);
        ctx.metrics?.onGeneration(loaded.spec.name, dones);
        return dones;
      };

      if (!run.openStream) return run.sendFull(translator.full(await generateAll(() => undefined)));

      let stream: StreamFraming | undefined;
      const sendAll = (frames: object[]): void => {
        for (const frame of frames) stream!.send(frame);
      };
      const open = (): StreamFraming => {
        if (!stream) {
          stream = run.openStream!();
          sendAll(translator.opening?.() ?? []);
        }
        return stream;
      };
      let dones: DoneEvent[];
      try {
        dones = await generateAll((choice, delta) => {
          if (stopAll.signal.aborted) return;
          open();
          sendAll(translator.delta(choice, delta));
        });
      } catch (e) {
        if (!stream) throw e;
        if (classifyError(e, run.requestId).internal) run.log.error({ err: e }, "generation failed mid-stream");
        stream.send(translator.error(e, run.requestId));
        return stream.end();
      }
      open();
      // Nobody reads an aborted stream: end it without the closing frames.
      if (dones.some((d) => d.finishReason === "abort")) return stream!.end();
      dones.forEach((done, i) => sendAll(translator.finish(i, done)));
      sendAll(translator.closing?.(dones) ?? []);
      stream!.end();
    },
    run.keepAliveMs,
  );
}
