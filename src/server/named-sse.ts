import type { FastifyReply } from "fastify";
import type { StreamFraming } from "./generation.js";
import { StreamWriter } from "./stream-writer.js";

/**
 * Server-sent events named by each frame's own `type`: `event: <type>` and `data: <json>`, with
 * no `[DONE]` at the end — the framing of Anthropic's Messages stream and OpenAI's Responses stream.
 */
export class NamedEventSse implements StreamFraming {
  private readonly stream: StreamWriter;

  constructor(reply: FastifyReply) {
    this.stream = new StreamWriter(reply, "text/event-stream; charset=utf-8");
  }

  send(frame: object): void {
    this.stream.write(`event: ${(frame as { type: string }).type}\ndata: ${JSON.stringify(frame)}\n\n`);
  }

  end(): void {
    this.stream.end();
  }
}
