import type { FastifyReply } from "fastify";
import { StreamWriter } from "../stream-writer.js";

/** Server-sent events: `data: <json>\n\n` … `data: [DONE]\n\n`. */
export class SseWriter {
  private readonly stream: StreamWriter;

  constructor(reply: FastifyReply) {
    this.stream = new StreamWriter(reply, "text/event-stream; charset=utf-8");
  }

  send(data: unknown): void {
    this.stream.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  end(): void {
    this.stream.end("data: [DONE]\n\n");
  }
}
