import type { FastifyReply } from "fastify";
import { StreamWriter } from "../stream-writer.js";

/**
 * Anthropic's server-sent events: each frame is `event: <type>` and `data: <json>`, the event
 * name being the frame's own `type` (message_start, content_block_delta, ping, error, …). The
 * stream ends after message_stop (or an error event), with no `[DONE]`.
 */
export class AnthropicSseWriter {
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
